"""The queue's view of the fleet: pool snapshots, queue positions and start predictions.

Predictions use only observed service times (an EWMA per model and pool,
updated when tasks finish). Without observations a prediction is marked as
a guess, and admission never refuses a deadline on a guess (SPEC §3.1).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from orchestrator.sql import Select, db_value, fetch, scalar, table, update
from orchestrator.tasks import tally
from orchestrator.tasks.models import ServiceTime, Task, TaskState
from orchestrator.tasks.requests import Placement
from pools.models import Pool
from pools.placement import Mode, PlacementRequest, PoolView

# Weight of the newest observation in the moving averages.
EWMA_ALPHA = 0.2
# Used for predictions before anything was observed: a visible guess, never a refusal.
UNOBSERVED_SERVICE_MS = 1000.0


@dataclass(frozen=True)
class Prediction:
    start_ms: int
    observed: bool
    service_ms: float


def pool_views(pools: list[Pool] | None = None) -> list[PoolView]:
    """Every pool as placement sees it; filters (online, ready, draining) are placement's job."""
    rows = pools if pools is not None else list(Pool.objects.select_related("node"))
    return [
        PoolView(
            pool_id=pool.id,
            node_id=pool.node_id,
            engine=pool.engine,
            models=frozenset(pool.model_refs or ()),
            slots_total=pool.slots_total,
            active_leases=pool.active_leases,
            ready=pool.ready,
            draining=pool.is_draining,
            node_online=pool.node.status == "online",
            ctx_max=pool.ctx_max,
            device_mask=pool.device_mask,
            vram_free_bytes=pool.vram_free_bytes,
        )
        for pool in rows
    ]


def placement_request(
    model_ref: str,
    engine: str,
    ctx: int,
    placement: Placement,
    *,
    session_pool_id: str | None = None,
    extra_avoid: tuple[str, ...] = (),
) -> PlacementRequest:
    return PlacementRequest(
        model_ref=model_ref,
        engine=engine,
        ctx=ctx,
        mode=Mode(placement.mode),
        pin_pool_id=placement.pin_pool_id,
        prefer_pools=placement.prefer_pools,
        avoid_pools=(*placement.avoid_pools, *extra_avoid),
        require_device_mask=placement.require_device_mask or None,
        allow_fallback=placement.allow_fallback,
        session_pool_id=session_pool_id,
    )


def placement_of(task: Task) -> Placement:
    raw = dict(task.options.get("placement") or {})
    return Placement(
        mode=raw.get("mode", "auto"),
        pin_pool_id=raw.get("pin_pool_id"),
        prefer_pools=tuple(raw.get("prefer_pools") or ()),
        avoid_pools=tuple(raw.get("avoid_pools") or ()),
        require_device_mask=raw.get("require_device_mask"),
        allow_fallback=raw.get("allow_fallback", True),
    )


def queued_ahead(model_ref: str, engine: str, rank: int, created_at: datetime, task_id: str | None = None) -> int:
    """Queued tasks for the same (model, engine) that will be dispatched before this one."""
    ahead, params = _ahead(model_ref, engine, rank, created_at, task_id)
    return int(scalar(f"SELECT {ahead}", params))


@dataclass(frozen=True)
class QueueCounts:
    queued: int  # every queued task
    ahead: int  # those of them `queued_ahead` of the newcomer
    unleased: bool  # some pool has a slot without a lease


def queue_counts(model_ref: str, engine: str, rank: int, created_at: datetime) -> QueueCounts:
    """What admission reads of the queue for a task not yet queued, in one statement."""
    ahead, params = _ahead(model_ref, engine, rank, created_at, None)
    if _tallied():
        every, tallied = tally.queued_sql()
        params = [*tallied, *params]
    else:
        every = f'(SELECT COUNT(*) FROM {table(Task)} WHERE "state" = %s)'  # noqa: S608 - values are parameters
        params = [TaskState.QUEUED, *params]
    row = fetch(f"SELECT {every}, {ahead}, {unleased_slot()}", params, one=True)
    return QueueCounts(int(row[0]), int(row[1]), bool(row[2]))


def unleased_slot() -> str:
    """SQL that is true when some pool has a slot without a lease (admission and dispatcher passes ask)."""
    return f'EXISTS (SELECT 1 FROM {table(Pool)} WHERE "active_leases" < "slots_total")'  # noqa: S608


def _tallied() -> bool:
    """Whether the database keeps the queue's tally (SQLite and PostgreSQL: orchestrator/tasks/tally.py)."""
    return connection.vendor in ("sqlite", "postgresql")


def _ahead(model_ref: str, engine: str, rank: int, created_at: datetime, task_id: str | None) -> tuple[str, list[Any]]:
    """The expression `queued_ahead` selects, and its parameters.

    Ahead of a task: every queued task of its (model, engine) with a higher
    priority, and of the same priority those queued earlier, or at the same
    instant with a smaller id (the dispatcher's order). A task not yet queued
    (`task_id` None) has no id to sort by, and nothing of its instant is ahead.

    For a newcomer, with the tally: the tally of the higher and the
    same priorities, less the tasks of the same priority queued at or after
    its instant (at most a few), read from the `task_queue_position` index.
    Otherwise a sum of counts of that index, one per range (a higher
    priority; the same and earlier; the same instant and a smaller id), each
    reading consecutive index entries and no rows: a queued task's own
    position (its status) costs what is ahead of it, where the tally would
    cost what is behind it.
    """
    at = db_value(Task, "created_at", created_at)
    same = f'SELECT COUNT(*) FROM {table(Task)} WHERE "state" = %s AND "model_ref" = %s AND "engine" = %s'  # noqa: S608
    key = [TaskState.QUEUED, model_ref, engine, rank]
    if task_id is None and _tallied():
        counted, tallied = tally.queued_sql("model_ref = %s AND engine = %s AND priority_rank <= %s", key[1:])
        behind = f'({same} AND "priority_rank" = %s AND "created_at" >= %s)'
        return f"({counted} - {behind})", [*tallied, *key, at]
    ranges = [f'({same} AND "priority_rank" < %s)', f'({same} AND "priority_rank" = %s AND "created_at" < %s)']
    params: list[Any] = [*key, *key, at]
    if task_id is not None:
        ranges.append(f'({same} AND "priority_rank" = %s AND "created_at" = %s AND "id" < %s)')
        params += [*key, at, task_id]
    return " + ".join(ranges), params


def predict_start(position: int, pools: list[PoolView], service: tuple[float, bool]) -> Prediction:
    """When a task at `position` (0 = next) will start, from free slots and the service time
    (`service_time`: the average and whether it was observed)."""
    free = sum(pool.free_slots for pool in pools)
    slots = sum(pool.slots_total for pool in pools)
    service_ms, observed = service
    if position < free or slots == 0:
        return Prediction(0, observed, service_ms)
    # Slots free up one service time after they were taken; each full wave of
    # `slots` tasks ahead costs one more service time.
    waves = (position - free) // slots + 1
    return Prediction(int(waves * service_ms), observed, service_ms)


def service_time(model_ref: str, pools: list[PoolView]) -> tuple[float, bool]:
    """The model's average service time on these pools, and whether any was observed (a default if not)."""
    pool_ids = [pool.pool_id for pool in pools]
    if not pool_ids:
        return UNOBSERVED_SERVICE_MS, False
    totals = [row.total_ms for row in _service_times(len(pool_ids)).all(model_ref, *pool_ids)]
    if not totals:
        return UNOBSERVED_SERVICE_MS, False
    return sum(totals) / len(totals), True


@functools.cache
def _service_times(pools: int) -> Select[ServiceTime]:
    """The averages of a model on `pools` pools (one statement per number of pools, written once)."""
    placeholders = ", ".join(["%s"] * pools)
    return Select(ServiceTime, ("id", "total_ms"), f'"model_ref" = %s AND "pool_id" IN ({placeholders})', limit=None)


def on_time_probability(predicted_start_ms: int, remaining_ms: int, service_ms: float) -> float:
    """A smooth estimate that the task starts before its deadline (1.0 when it surely does)."""
    if remaining_ms <= 0:
        return 0.0
    spread = max(service_ms, 1.0) / 4
    # Clamped: past ±50 the answer rounds to 0 or 1 anyway, and exp() overflows past ~709
    # (a deep queue behind a short deadline used to fail the admission after its commit).
    exponent = min(max((predicted_start_ms - remaining_ms) / spread, -50.0), 50.0)
    return round(1.0 / (1.0 + math.exp(exponent)), 3)


def record_service_time(model_ref: str, pool_id: str, first_token_ms: float, decode_ms: float, tokens: int) -> None:
    """Fold one finished task into the (model, pool) averages: one UPDATE, computed by the database."""
    observed = {
        "first_token_ms": first_token_ms,
        "decode_ms_per_token": decode_ms / tokens if tokens else 0.0,
        "total_ms": first_token_ms + decode_ms,
    }
    if _fold_in(model_ref, pool_id, observed):
        return
    try:
        with transaction.atomic():
            ServiceTime.objects.create(model_ref=model_ref, pool_id=pool_id, samples=1, **observed)
    except IntegrityError:  # another process recorded the first sample in between: fold this one in
        _fold_in(model_ref, pool_id, observed)


def _fold_in(model_ref: str, pool_id: str, observed: dict[str, float]) -> bool:
    """avg += alpha * (new - avg), for each average, atomically: no read-modify-write race to lock against."""
    moved = ", ".join(f'"{name}" = "{name}" + %s * (%s - "{name}")' for name in observed)
    params: list[Any] = [value for observed_value in observed.values() for value in (EWMA_ALPHA, observed_value)]
    params += [db_value(ServiceTime, "updated_at", timezone.now()), model_ref, pool_id]
    assignments = f'{moved}, "samples" = "samples" + 1, "updated_at" = %s'
    return update(ServiceTime, assignments, '"model_ref" = %s AND "pool_id" = %s', params) > 0
