"""The task event log: append-only frames per task, read by any number of SSE clients."""

from __future__ import annotations

import threading

from django.conf import settings

from .base import EventLog
from .memory import InProcessEventLog
from .redis import RedisEventLog

_lock = threading.Lock()
_in_process: InProcessEventLog | None = None
_on_redis: dict[tuple[str, str], RedisEventLog] = {}


def get_event_log() -> EventLog:
    """Redis Streams when REDIS_URL is set (shared by all processes), else this process's store."""
    global _in_process
    url: str | None = settings.REDIS_URL
    with _lock:
        if url:
            key = (url, settings.ORCHD_REDIS_PREFIX)
            if key not in _on_redis:
                _on_redis[key] = RedisEventLog(url, prefix=key[1])
            return _on_redis[key]
        if _in_process is None:
            _in_process = InProcessEventLog()
        return _in_process


def reset_event_log_for_tests() -> None:
    """Forget every log, so the next get_event_log() starts empty (Redis keys are left alone)."""
    global _in_process
    with _lock:
        _in_process = None
        _on_redis.clear()
