"""Requests per minute per API token: a sliding window, exact across processes.

With Redis, one Lua script per admission trims the token's window (a sorted
set of admission times), counts it and adds the new admission only if it
fits — atomic, so N web processes together admit exactly the limit. Without
Redis, rows in the database inside the admission transaction do the same
(SQLite serializes writers; PostgreSQL holds the admission lock). A refusal
says when the oldest admission leaves the window: that is the Retry-After.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from orchestrator.auth.models import RateEvent

WINDOW_MS = 60_000

_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now_ms}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_ms: int = 0
    member: str = ""


def _key(token_id: int) -> str:
    return f"{settings.ORCHD_REDIS_PREFIX}:rpm:{token_id}"


_clients: dict[str, Any] = {}


def _redis() -> Any:
    import redis

    url = str(settings.REDIS_URL)
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


def consume(token_id: int, limit: int, now: datetime) -> RateDecision:
    """Count one admission against the token's limit, or say how long to wait."""
    if settings.REDIS_URL:
        member = uuid.uuid4().hex
        allowed, wait_ms = _redis().eval(_SCRIPT, 1, _key(token_id), limit, WINDOW_MS, member)
        return RateDecision(bool(allowed), max(1, int(wait_ms)) if not allowed else 0, member)
    window_start = now - timedelta(milliseconds=WINDOW_MS)
    RateEvent.objects.filter(token_id=token_id, at__lte=window_start).delete()
    oldest = RateEvent.objects.filter(token_id=token_id).order_by("at").values_list("at", flat=True)
    times = list(oldest[:limit])
    if len(times) >= limit:
        wait_ms = int((times[0] + timedelta(milliseconds=WINDOW_MS) - now).total_seconds() * 1000)
        return RateDecision(False, max(1, wait_ms))
    RateEvent.objects.create(token_id=token_id, at=now)
    return RateDecision(True)


def undo(token_id: int, decision: RateDecision) -> None:
    """Give back an admission that was counted but then refused for another reason.

    The database variant needs nothing: the admission transaction rolls back.
    """
    if settings.REDIS_URL and decision.allowed and decision.member:
        _redis().zrem(_key(token_id), decision.member)
