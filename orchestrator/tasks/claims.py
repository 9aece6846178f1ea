"""Claiming queued tasks: placement plus a slot lease, both compare-and-swap.

`claim_tasks` runs in one transaction. For each queued task in dispatch
order it asks placement for a pool, takes a slot with
`UPDATE pool SET active_leases = active_leases + 1 WHERE active_leases < slots_total`
and claims the task with `UPDATE task ... WHERE state = 'queued'`; it acts
only when exactly one row changed. That holds on SQLite (where
select_for_update does nothing) and on PostgreSQL, so any number of
dispatcher processes never oversubscribe a pool or run a task twice.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from nodes.models import Node
from orchestrator import metrics
from orchestrator.budgets import ledger
from orchestrator.budgets.ledger import Remaining
from orchestrator.sessions.models import Session
from orchestrator.sessions.services import record_session_placement
from orchestrator.sql import Select, scalar, table, update
from orchestrator.tasks.models import Task, TaskState
from orchestrator.tasks.queue import placement_of, placement_request, pool_views, unleased_slot
from pools.models import Pool
from pools.placement import Outcome, PoolView, Strategy, place

logger = logging.getLogger("orchestrator.dispatch")

# How many queued tasks one pass looks at; the rest wait for the next pass.
SCAN_LIMIT = 500


def _worth_a_pass() -> bool:
    """Whether a task is queued and a pool has a slot without a lease: every pass asks first.

    Outside any transaction, so that most passes (nothing queued, or every
    slot leased: on PostgreSQL each admission behind a full fleet wakes the
    dispatchers) take no write lock. A task queued or a slot released after this look
    wakes the dispatchers after its commit, and the pass that wake-up starts
    looks again.
    """
    queued = f'SELECT 1 FROM {table(Task)} WHERE "state" = %s'  # noqa: S608 - values are parameters
    return bool(scalar(f"SELECT EXISTS ({queued}) AND {unleased_slot()}", [TaskState.QUEUED]))


@dataclass(frozen=True)
class Claim:
    task_id: str
    session_id: str
    workload: str
    model_ref: str
    engine: str
    priority: str
    pool_id: str
    node_id: str
    engine_url: str
    engine_version: str
    prompt: str
    inputs: tuple[str, ...]
    max_tokens: int
    seed: int | None
    attempts: int
    created_at: datetime
    # max_tokens was cut to fit a budget: a `length` end is reported as `budget`.
    budget_clamped: bool = False
    # Budgets left for this session/token when dispatched, counting this task's reservation as unspent.
    budget_left: Remaining = Remaining()
    price_per_token: Decimal = Decimal(0)


def claim_tasks(owner: str, now: datetime, round_robin_offset: int = 0) -> list[Claim]:
    # Most passes find nothing to do: look before taking SQLite's write lock (BEGIN IMMEDIATE).
    if not _worth_a_pass():
        return []
    with transaction.atomic():
        rows = pool_rows()
        snapshot = {pool.pool_id: pool for pool in pool_views(list(rows.values()))}
        if not any(pool.free_slots for pool in snapshot.values()):
            return []
        queued = list(Task.objects.queued().in_dispatch_order()[:SCAN_LIMIT])
        affinity = _session_pools({task.session_id for task in queued})
        claims = []
        for offset, task in enumerate(queued, start=round_robin_offset):
            claim = _claim_one(task, owner, now, snapshot, rows, affinity.get(task.session_id), offset)
            if claim is not None:
                claims.append(claim)
            if not any(pool.free_slots for pool in snapshot.values()):
                break
        return claims


def lease_for_new_task(
    task: Task, owner: str, now: datetime, rows: dict[str, Pool], session_pool: str | None, offset: int
) -> str | None:
    """Admission's fast path: place a task not yet inserted and lease its slot; the pool's id, or None.

    Admission calls this only when no other task is queued, so dispatch order
    is kept, and in its own transaction: the task row is then inserted already
    dispatched (no other dispatcher could have seen it queued), which spares
    the claim's compare-and-swap. The lease is the same compare-and-swap as a
    dispatcher pass's, but on PostgreSQL it never waits for the pool's row: admission holds
    the capacity lock, and a dispatcher pass holding that row may be waiting for a session
    row that an admission waiting for the lock holds. A row held: no lease here, and the
    task is queued for the dispatchers.
    """
    snapshot = {pool.pool_id: pool for pool in pool_views(list(rows.values()))}
    pool_id = _place_and_lease(task, snapshot, session_pool, offset, wait=False)
    if pool_id is None:
        return None
    task.state, task.pool_id, task.node_id = TaskState.DISPATCHED, pool_id, rows[pool_id].node_id
    task.owner, task.dispatched_at, task.attempts = owner, now, 1
    return pool_id


def claim_of_new_task(task: Task, pool: Pool, budget_left: Remaining, price: Decimal) -> Claim:
    """The claim of a task `lease_for_new_task` placed, once inserted.

    What a dispatcher pass would read back (the budgets left, the price),
    admission has just computed, and passes in.
    """
    record_session_placement(task.session_id, pool.id)
    return _claim(task, pool, budget_left, price, attempts=task.attempts)


# What placement (tasks.queue.pool_views) and a claim read of a pool: not its JSON
# reports, reload and purge state, which cost more to load than all the rest.
POOL_FIELDS = (
    "id",
    "node",
    "engine",
    "engine_url",
    "engine_version",
    "model_refs",
    "slots_total",
    "active_leases",
    "ready",
    "draining",
    "desired_draining",
    "ctx_max",
    "device_mask",
    "vram_free_bytes",
)


_POOLS = Select(Pool, POOL_FIELDS, "1 = 1", limit=None)
_NODE_STATUSES = Select(Node, ("id", "status"), "1 = 1", limit=None)


def pool_rows() -> dict[str, Pool]:
    """Every pool with its node (id and status only), by id: what placement and the claims read."""
    pools = _POOLS.all()
    nodes = {node.id: node for node in _NODE_STATUSES.all()}
    rows = {}
    for pool in pools:
        node = nodes.get(pool.node_id)
        if node is None:  # deleted (with its pools) between the two reads
            continue
        Pool.node.field.set_cached_value(pool, node)
        rows[pool.id] = pool
    return rows


def _session_pools(session_ids: set[str]) -> dict[str, str]:
    rows = Session.objects.filter(id__in=session_ids, last_pool_id__isnull=False).values_list("id", "last_pool_id")
    return {session_id: pool_id for session_id, pool_id in rows if pool_id}


def _claim_one(
    task: Task,
    owner: str,
    now: datetime,
    snapshot: dict[str, PoolView],
    rows: dict[str, Pool],
    session_pool: str | None,
    offset: int,
) -> Claim | None:
    pool_id = _lease(task, owner, now, snapshot, session_pool, offset)
    if pool_id is None:
        return None
    # The session moves here: its KV cache elsewhere no longer counts (warm again at first token).
    record_session_placement(task.session_id, pool_id)
    left = ledger.remaining_for(task.session_id, task.token_id)
    budget_left = Remaining(
        tokens=None if left.tokens is None else left.tokens + task.reserved_tokens,
        time_ms=left.time_ms,
        cost=None if left.cost is None else left.cost + task.reserved_cost,
    )
    # Carried to the end of the run, which charges at this price (no second catalog read).
    price = ledger.price_per_token(task.model_ref)
    return _claim(task, rows[pool_id], budget_left, price)


def _lease(
    task: Task, owner: str, now: datetime, snapshot: dict[str, PoolView], session_pool: str | None, offset: int
) -> str | None:
    """Place the task, lease a slot and claim the row; the pool's id, or None (nothing changed)."""
    pool_id = _place_and_lease(task, snapshot, session_pool, offset)
    if pool_id is None:
        return None
    claimed = Task.objects.filter(id=task.id, state=TaskState.QUEUED).update(
        state=TaskState.DISPATCHED,
        pool_id=pool_id,
        node_id=snapshot[pool_id].node_id,
        owner=owner,
        dispatched_at=now,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        Pool.objects.filter(id=pool_id, active_leases__gt=0).update(active_leases=F("active_leases") - 1)
        snapshot[pool_id] = replace(snapshot[pool_id], active_leases=snapshot[pool_id].active_leases - 1)
        return None
    return pool_id


def _place_and_lease(
    task: Task, snapshot: dict[str, PoolView], session_pool: str | None, offset: int, *, wait: bool = True
) -> str | None:
    """Ask placement for a pool and take one of its slots; the pool's id, or None.

    Not `wait`, on PostgreSQL: None at once if another transaction holds the pool's row.
    """
    request = placement_request(
        task.model_ref,
        task.engine,
        task.ctx,
        placement_of(task),
        session_pool_id=session_pool,
        extra_avoid=tuple(task.avoid_pools or ()),
    )
    strategy = Strategy(settings.ORCHD_PLACEMENT_STRATEGY)
    decision = place(
        request, list(snapshot.values()), strategy, round_robin_offset=offset, seed=zlib.crc32(task.id.encode())
    )
    if decision.outcome != Outcome.PLACED or decision.pool_id is None:
        return None
    pool_id = decision.pool_id
    # Still serving, as placement saw it: admission's snapshot is read before its lock.
    serving = '"ready" = %s AND "draining" = %s AND "desired_draining" = %s'
    row = '"id" = %s'
    if not wait and connection.vendor == "postgresql":
        row = f'"id" = (SELECT "id" FROM {table(Pool)} WHERE "id" = %s FOR UPDATE SKIP LOCKED)'  # noqa: S608
    where = f'{row} AND "active_leases" < "slots_total" AND {serving}'
    leased = update(Pool, '"active_leases" = "active_leases" + 1', where, [pool_id, True, False, False])
    if not leased:
        snapshot[pool_id] = replace(snapshot[pool_id], active_leases=snapshot[pool_id].slots_total)
        return None
    snapshot[pool_id] = replace(snapshot[pool_id], active_leases=snapshot[pool_id].active_leases + 1)
    metrics.placement_decisions_total.labels(
        outcome="placed", pinned=str(decision.pinned).lower(), fallback=str(decision.fallback).lower()
    ).inc()
    logger.info("placement.decision", extra={"task_id": task.id, "pool_id": pool_id, **decision.log_fields()})
    return pool_id


def _claim(task: Task, pool: Pool, budget_left: Remaining, price: Decimal, *, attempts: int | None = None) -> Claim:
    return Claim(
        task_id=task.id,
        session_id=task.session_id,
        workload=task.workload,
        model_ref=task.model_ref,
        engine=task.engine,
        priority=task.priority,
        pool_id=pool.id,
        node_id=pool.node_id,
        engine_url=pool.engine_url,
        engine_version=pool.engine_version,
        prompt=task.prompt,
        inputs=tuple(task.inputs or ()),
        max_tokens=task.max_tokens,
        seed=(task.options or {}).get("seed"),
        # A claimed row's `attempts` went up in the database, not on this object.
        attempts=task.attempts + 1 if attempts is None else attempts,
        created_at=task.created_at,
        budget_clamped=bool(task.max_tokens_requested and task.max_tokens < task.max_tokens_requested),
        budget_left=budget_left,
        price_per_token=price,
    )
