"""State transitions of a task: every one a compare-and-swap, every end announced once.

Who ends a task writes the terminal frame to the event log first; the log
refuses a second terminal frame, so whoever wins there (the runner finishing,
a cancel, a deadline) decides the outcome, and the database row follows with
a compare-and-swap from an active state.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from orchestrator import metrics
from orchestrator.events import get_sync_event_log
from orchestrator.sql import update
from orchestrator.tasks.models import ACTIVE_STATES, Task, TaskState
from orchestrator.tasks.queue import Prediction, on_time_probability
from pools.models import Pool
from pools.placement import PoolView

logger = logging.getLogger("orchestrator.tasks")

LIVE_STATES = (TaskState.QUEUED, *ACTIVE_STATES)
# What a client is told to wait before retrying after WORKER_RESET.
WORKER_RESET_RETRY_MS = 1000


def error_data(code: str, message: str, *, retry_after_ms: int | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"code": code, "message": message, "retriable": retry_after_ms is not None}
    if retry_after_ms is not None:
        data["retry_after_ms"] = retry_after_ms
    data.update({key: value for key, value in extra.items() if value})
    return data


def terminate_log(task_id: str, event: str, data: dict[str, Any]) -> bool:
    """Write the terminal frame from sync code; True if this call ended the stream."""
    log = get_sync_event_log()
    seq = log.terminate(task_id, event, data)
    if seq is not None:
        log.expire(task_id, settings.ORCHD_EVENTS_RETENTION_S)
    return seq is not None


def announce_admitted(
    task: Task, position: int, prediction: Prediction, serving: list[PoolView], engine_versions: dict[str, str]
) -> None:
    """Frame 0 of every stream: where the task stands at admission (SPEC §3.4 `started`).

    `engine_versions` maps pool ids to their engine version (admission has just read the pools).
    """
    tentative = next((pool for pool in serving if pool.free_slots > 0), serving[0] if serving else None)
    data = {
        "queue_position": position,
        "predicted_start_ms": prediction.start_ms,
        "pool_id": tentative.pool_id if tentative else None,
        "node_id": tentative.node_id if tentative else None,
        "engine": task.engine,
        "engine_version": (engine_versions.get(tentative.pool_id) or None) if tentative else None,
        "model_ref": task.model_ref,
    }
    log = get_sync_event_log()
    log.append(task.id, "started", data)
    log.append(
        task.id,
        "metrics",
        {
            "queue_depth": position,
            "on_time_probability": on_time_probability(prediction.start_ms, task.deadline_ms, prediction.service_ms),
        },
    )


def drop_queued(task: Task) -> bool:
    """Compare-and-swap a queued task to dropped (drop-lru).

    The caller announces it and releases its reservation (`settle_dropped`) after commit;
    `settle_ended_unrun` does the latter if the process died in between.
    """
    now = timezone.now()
    return bool(
        Task.objects.filter(id=task.id, state=TaskState.QUEUED).update(state=TaskState.DROPPED, finished_at=now)
    )


def settle_dropped(task: Task) -> None:
    """Release a dropped task's reservation (after the drop's commit, in a transaction of its own)."""
    settle_unrun(task.id)


# Tasks that ended without running, their reservation not released after this long: the
# process that ended them died before it settled (`settle_ended_unrun`).
UNSETTLED_GRACE = timedelta(seconds=30)


def settle_ended_unrun(now: datetime) -> list[str]:
    """Release the reservations of dropped and expired tasks that were never settled.

    A drop settles after the admission's commit, and an expiry after its own update:
    a process that died in between left the reservation held.
    """
    overdue = Task.objects.filter(
        budget_settled=False, state__in=[TaskState.DROPPED, TaskState.EXPIRED], finished_at__lte=now - UNSETTLED_GRACE
    )
    settled = [task_id for task_id in overdue.values_list("id", flat=True)[:100] if settle_unrun(task_id)]
    if settled:  # only those this call settled: another process's sweep may have taken some
        logger.warning("budget.settled_late", extra={"task_ids": settled})
    return settled


def settle_unrun(task_id: str, tokens: int = 0, decode_ms: int = 0) -> bool:
    """Release the budget a task reserved but will not use (it ended before or without running);
    False if it was settled already."""
    from orchestrator.budgets import ledger

    model_ref = Task.objects.filter(id=task_id).values_list("model_ref", flat=True).first() or ""
    return ledger.settle(task_id, tokens, decode_ms, ledger.price_per_token(model_ref))


def announce_dropped(task: Task, prediction: Prediction) -> None:
    retry_ms = max(1000, int(prediction.service_ms))
    terminate_log(
        task.id,
        "error",
        error_data("QUEUE_FULL_DROP_LRU", "Dropped from a full queue for a newer task.", retry_after_ms=retry_ms),
    )
    _erase_inputs(task.id)
    metrics.tasks_completed_total.labels(engine=task.engine, pool_id=metrics.UNPLACED, outcome="dropped").inc()
    logger.info("task.dropped", extra={"task_id": task.id, "session_id": task.session_id})


def expire_overdue_tasks(now: datetime) -> list[str]:
    """Queued tasks whose deadline passed: expired, with an SSE error DEADLINE_UNMET."""
    expired = []
    for task in Task.objects.queued().filter(deadline_at__lte=now).only("id", "engine", "deadline_ms")[:500]:
        if Task.objects.filter(id=task.id, state=TaskState.QUEUED).update(state=TaskState.EXPIRED, finished_at=now):
            message = f"The deadline of {task.deadline_ms} ms passed while the task was queued."
            terminate_log(task.id, "error", error_data("DEADLINE_UNMET", message, engine=task.engine))
            _erase_inputs(task.id)
            settle_unrun(task.id)
            metrics.tasks_completed_total.labels(engine=task.engine, pool_id=metrics.UNPLACED, outcome="expired").inc()
            expired.append(task.id)
    if expired:
        logger.info("tasks.expired", extra={"tasks": expired})
    return expired


def cancel_task(task_id: str, reason: str) -> bool:
    """Cancel a live task (SPEC §3.5); True when this call canceled it, False if it had ended.

    The terminal `end` frame is written first: once it is in the log no
    process can append another token, which is what lets the API answer 204
    knowing the stream is over.
    """
    task = Task.objects.filter(id=task_id).first()
    if task is None or task.state not in LIVE_STATES:
        return False
    stats = get_sync_event_log().stats(task_id)
    now_ms = int(timezone.now().timestamp() * 1000)
    decode_ms = now_ms - stats.first_token_ms if stats.first_token_ms else 0
    end = {
        "tokens_out": stats.tokens,
        "decode_ms": decode_ms,
        "tokens_in": task.tokens_in,
        "finish_reason": "canceled",
        "canceled": True,
    }
    if not terminate_log(task_id, "end", end):
        return False  # the stream had already ended (completed, failed, expired...): that outcome stands
    fields = {"state": TaskState.CANCELED, "cancel_reason": reason, "finished_at": timezone.now()}
    if Task.objects.filter(id=task_id, state=TaskState.QUEUED).update(**fields):
        # Nobody runs it, so nobody else settles its budget (a running task's runner does).
        _erase_inputs(task_id)
        settle_unrun(task_id)
    else:
        Task.objects.filter(id=task_id, state__in=LIVE_STATES).update(**fields, tokens_out=stats.tokens)
    _count_cancel(task, reason)
    from orchestrator.tasks import notify

    notify.broadcast({"kind": "cancel", "task_id": task_id, "reason": reason})
    logger.info("task.canceled", extra={"task_id": task_id, "reason": reason, "pool_id": task.pool_id or None})
    return True


def _count_cancel(task: Task, reason: str) -> None:
    metrics.tasks_canceled_total.labels(
        engine=task.engine,
        engine_version=task.engine_version,
        pool_id=task.pool_id or metrics.UNPLACED,
        replica_id=settings.ORCHD_REPLICA_ID,
        reason=reason,
    ).inc()
    metrics.tasks_completed_total.labels(
        engine=task.engine, pool_id=task.pool_id or metrics.UNPLACED, outcome="canceled"
    ).inc()


def _erase_inputs(task_id: str) -> None:
    if not settings.ORCHD_STORE_PROMPTS:
        Task.objects.filter(id=task_id).update(prompt="", inputs=[])


def release_lease(pool_id: str) -> None:
    """Give back one slot of `pool_id` (never below zero)."""
    update(Pool, '"active_leases" = "active_leases" - 1', '"id" = %s AND "active_leases" > 0', [pool_id])


acancel_task = sync_to_async(cancel_task)
aexpire_overdue_tasks = sync_to_async(expire_overdue_tasks)
asettle_ended_unrun = sync_to_async(settle_ended_unrun)
