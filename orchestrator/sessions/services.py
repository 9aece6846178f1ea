"""Session lifecycle and accounting (SPEC §4).

Every change is a single UPDATE with F-expressions or a compare-and-swap
condition, so any number of server processes may admit and finish tasks of
the same session at once without locks and without lost updates.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F

from orchestrator.sessions.models import Session
from orchestrator.sql import Select, all_fields, db_value, greatest, insert, table, update

logger = logging.getLogger("orchestrator.sessions")

# Renew, restart and create can each lose a race to another process; after a
# lost race the next round succeeds, so a few rounds are plenty.
OPEN_ATTEMPTS = 4


class TurnLimitReached(Exception):
    """The live session already has ORCHD_SESSION_MAX_TURNS turns (SPEC: `budget.turns`)."""

    def __init__(self, session_id: str, max_turns: int) -> None:
        super().__init__(f"Session {session_id} has used all {max_turns} turns.")
        self.session_id = session_id
        self.max_turns = max_turns


def session_ttl() -> timedelta:
    return timedelta(milliseconds=settings.ORCHD_SESSION_TTL_MS)


def default_budgets() -> dict[str, Any]:
    """Budgets a new session starts with; None means unlimited."""
    return {
        "tokens_budget": settings.ORCHD_SESSION_TOKENS_BUDGET,
        "time_budget_ms": settings.ORCHD_SESSION_TIME_BUDGET_MS,
        "cost_budget": settings.ORCHD_SESSION_COST_BUDGET,
    }


def get_live_session(session_id: str, now: datetime) -> Session | None:
    """The session, or None when it is unknown or expired at `now`."""
    return Session.objects.live(now).filter(pk=session_id).first()


def open_session_turn(session_id: str, now: datetime, *, max_turns: int | None = None) -> Session:
    """Count one admitted task: create the session on first use, else add a turn and renew the TTL.

    An expired session is started afresh (expired counts as absent). The turn
    limit (`max_turns`, default ORCHD_SESSION_MAX_TURNS, 0 = unlimited) is part
    of the statement's condition, so two concurrent admissions cannot both take
    the last turn; TurnLimitReached when it is used up.

    One statement where the database returns written rows (`_open`: an upsert
    that creates, restarts or renews); otherwise up to four (`_open_in_steps`).
    """
    limit = settings.ORCHD_SESSION_MAX_TURNS if max_turns is None else max_turns
    expires_at = now + session_ttl()
    if not _returns_rows():
        return _open_in_steps(session_id, now, expires_at, limit)
    session = _open(session_id, now, expires_at, limit)
    if session is None:
        raise TurnLimitReached(session_id, limit)
    if session.turns == 1 and session.created_at == now:  # created or restarted (a renewal has 2 turns or more)
        logger.info("session.started", extra={"session_id": session_id})
    return session


def _returns_rows() -> bool:
    """Whether the database has RETURNING (PostgreSQL; SQLite from 3.35)."""
    return bool(connection.features.can_return_columns_from_insert)


def _open(session_id: str, now: datetime, expires_at: datetime, limit: int) -> Session | None:
    """Create, restart (expired) or renew the session in one upsert; None: live and at the turn limit."""
    fresh = _fresh_fields(now, expires_at)
    vendor = connection.vendor
    params: list[Any] = [session_id]
    for name, value in fresh.items():
        params.append(db_value(Session, name, value) if name in _MOMENTS else _constant(vendor, name, value))
    if limit:
        params.append(limit)
    found = _SESSION.returning(_upsert(vendor, tuple(fresh), bool(limit)), params)
    return found[0] if found else None


# The fresh fields that change with every call; the rest are defaults and settings, adapted once.
_MOMENTS = frozenset({"created_at", "expires_at"})


@functools.lru_cache(maxsize=64)
def _constant(vendor: str, name: str, value: Any) -> Any:
    return db_value(Session, name, value)


@functools.cache
def _upsert(vendor: str, fresh: tuple[str, ...], limited: bool) -> str:
    """The upsert of `_open` (per backend: `greatest`), written once.

    Every expression of the UPDATE reads the row as it was, so "expired" (its
    expiry at or before the new row's creation, i.e. now) holds for all of
    them alike: an expired row takes the new row's values, a live one keeps
    its own but for a turn more and the later expiry.
    """
    name = table(Session)
    expired = f'{name}."expires_at" <= EXCLUDED."created_at"'
    kept = {
        "turns": f'{name}."turns" + 1',
        "expires_at": greatest(f'{name}."expires_at"', 'EXCLUDED."expires_at"'),
    }
    assignments = []
    for field in fresh:
        live = kept.get(field, f'{name}."{field}"')
        assignments.append(f'"{field}" = CASE WHEN {expired} THEN EXCLUDED."{field}" ELSE {live} END')
    columns = ", ".join(f'"{field}"' for field in ("id", *fresh))
    values = ", ".join(["%s"] * (len(fresh) + 1))
    sql = f'INSERT INTO {name} ({columns}) VALUES ({values}) ON CONFLICT ("id") DO UPDATE SET {", ".join(assignments)}'  # noqa: S608
    return sql + f' WHERE {expired} OR {name}."turns" < %s' if limited else sql


def _open_in_steps(session_id: str, now: datetime, expires_at: datetime, limit: int) -> Session:
    """`open_session_turn` where the database returns no written rows: renew, restart or create, then read."""
    for _ in range(OPEN_ATTEMPTS):
        if _renew(session_id, now, expires_at, limit):
            session = _SESSION.first(session_id)
        elif limit and Session.objects.live(now).filter(pk=session_id, turns__gte=limit).exists():
            raise TurnLimitReached(session_id, limit)
        elif _restart_expired(session_id, now, expires_at) or _create(session_id, now, expires_at):
            session = _SESSION.first(session_id)
        else:
            continue
        # None only if the session was deleted in between; then go round again.
        if session is not None:
            return session
    raise RuntimeError(f"Could not open a turn of session {session_id} after {OPEN_ATTEMPTS} attempts.")


# Statements of every admission, written once as SQL (orchestrator.sql).
_SESSION = Select(Session, all_fields(Session), '"id" = %s')


def _renew(session_id: str, now: datetime, expires_at: datetime, limit: int) -> bool:
    # The larger expiry: a process whose clock lags another's must not shorten the TTL it renews.
    assignments = '"turns" = "turns" + 1, "expires_at" = ' + greatest('"expires_at"', "%s")
    where = '"id" = %s AND "expires_at" > %s'
    params = [db_value(Session, "expires_at", expires_at), session_id, db_value(Session, "expires_at", now)]
    if limit:
        where += ' AND "turns" < %s'
        params.append(limit)
    return update(Session, assignments, where, params) == 1


def _fresh_fields(now: datetime, expires_at: datetime) -> dict[str, Any]:
    return {
        "created_at": now,
        "expires_at": expires_at,
        "turns": 1,
        "kv_bytes": 0,
        "kv_warmth": False,
        "last_pool_id": None,
        "tokens_spent": 0,
        "time_spent_ms": 0,
        "cost_spent": Decimal(0),
        # Reservations of tasks from before the restart stay with them: they
        # settle only against the session row they were admitted under.
        "tokens_reserved": 0,
        "cost_reserved": Decimal(0),
        **default_budgets(),
    }


def _restart_expired(session_id: str, now: datetime, expires_at: datetime) -> bool:
    # The expiry condition makes this a compare-and-swap: of two racing
    # restarts only one matches; the other then renews the new session.
    fresh = _fresh_fields(now, expires_at)
    assignments = ", ".join(f'"{name}" = %s' for name in fresh)
    params = [db_value(Session, name, value) for name, value in fresh.items()]
    params += [session_id, db_value(Session, "expires_at", now)]
    restarted = update(Session, assignments, '"id" = %s AND "expires_at" <= %s', params) == 1
    if restarted:
        logger.info("session.started", extra={"session_id": session_id})
    return restarted


def _create(session_id: str, now: datetime, expires_at: datetime) -> bool:
    if not insert(Session(id=session_id, **_fresh_fields(now, expires_at)), if_absent=True):
        return False  # another process created it first; renewing it is next
    logger.info("session.started", extra={"session_id": session_id})
    return True


def record_session_spend(session_id: str, tokens: int, decode_ms: int, cost: Decimal) -> bool:
    """Add a finished task's spend; False when the session no longer exists.

    Spend is recorded even on an expired row: the task ran, and a restart
    resets the counters anyway.
    """
    if tokens < 0 or decode_ms < 0 or cost < 0:
        raise ValueError("Spend cannot be negative.")
    updated = Session.objects.filter(pk=session_id).update(
        tokens_spent=F("tokens_spent") + tokens,
        time_spent_ms=F("time_spent_ms") + decode_ms,
        cost_spent=F("cost_spent") + cost,
    )
    return updated == 1


def record_session_placement(session_id: str, pool_id: str) -> bool:
    """The session's task was placed on `pool_id`; the KV cache is cold anywhere else."""
    # The CASE reads the row before the update: warmth survives only a same-pool placement.
    assignments = '"last_pool_id" = %s, "kv_warmth" = CASE WHEN "last_pool_id" = %s THEN "kv_warmth" ELSE %s END'
    return update(Session, assignments, '"id" = %s', [pool_id, pool_id, False, session_id]) == 1


def mark_session_warm(session_id: str, pool_id: str) -> bool:
    """First token on `pool_id`: warm, unless the session has moved on to another pool since."""
    return update(Session, '"kv_warmth" = %s', '"id" = %s AND "last_pool_id" = %s', [True, session_id, pool_id]) == 1


def update_session_budgets(
    session_id: str, *, tokens_budget: int | None, time_budget_ms: int | None, cost_budget: Decimal | None
) -> bool:
    """Set the budgets (None = unlimited) without touching counters a task may be updating."""
    updated = Session.objects.filter(pk=session_id).update(
        tokens_budget=tokens_budget, time_budget_ms=time_budget_ms, cost_budget=cost_budget
    )
    return updated == 1


def delete_session(session_id: str) -> bool:
    """Forget a session; True when a row was deleted."""
    deleted, _ = Session.objects.filter(pk=session_id).delete()
    if deleted:
        logger.info("session.deleted", extra={"session_id": session_id})
    return deleted > 0


def purge_expired_sessions(now: datetime, batch_size: int = 500) -> int:
    """Delete sessions expired at `now`, `batch_size` rows per statement; the count deleted.

    Batches keep each DELETE short, so the single SQLite writer is never held
    for long. The expiry is checked again in the DELETE itself, so a session
    renewed between the SELECT and the DELETE survives.
    """
    total = 0
    while True:
        batch = list(Session.objects.expired(now).order_by("expires_at").values_list("pk", flat=True)[:batch_size])
        if not batch:
            break
        deleted, _ = Session.objects.expired(now).filter(pk__in=batch).delete()
        total += deleted
    if total:
        logger.info("session.purged", extra={"count": total})
    return total
