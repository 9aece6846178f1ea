"""The writes at a run's first token and at its end (the only DB writes of a run)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from orchestrator import metrics
from orchestrator.budgets import ledger
from orchestrator.events.base import EventLog, Frame, decode_all
from orchestrator.sessions.services import mark_session_warm
from orchestrator.sql import db_value, update
from orchestrator.tasks import notify
from orchestrator.tasks.claims import Claim
from orchestrator.tasks.lifecycle import release_lease
from orchestrator.tasks.models import ACTIVE_STATES, Task, TaskState
from orchestrator.tasks.queue import placement_of, placement_request, pool_views, record_service_time
from orchestrator.tasks.transcripts import store_transcript
from pools.placement import eligible_pools

if TYPE_CHECKING:
    from orchestrator.tasks.runner import Outcome

logger = logging.getLogger("orchestrator.runner")


def _labels(claim: Claim) -> dict[str, str]:
    return {"engine": claim.engine, "engine_version": claim.engine_version, "pool_id": claim.pool_id}


@sync_to_async
def first_token(claim: Claim, first_token_ms: float) -> None:
    started = db_value(Task, "started_at", timezone.now())
    params = [TaskState.RUNNING, started, claim.task_id, TaskState.DISPATCHED]
    update(Task, '"state" = %s, "started_at" = %s', '"id" = %s AND "state" = %s', params)
    mark_session_warm(claim.session_id, claim.pool_id)
    metrics.tasks_started_total.labels(
        **_labels(claim), replica_id=settings.ORCHD_REPLICA_ID, priority=claim.priority
    ).inc()
    metrics.latency_first_token_ms.labels(**_labels(claim), priority=claim.priority).observe(first_token_ms)


async def finish_run(claim: Claim, outcome: Outcome, log: EventLog) -> None:
    released = False
    try:
        if outcome.kind == "requeue":
            if await _requeue(claim, outcome):
                return
            outcome.kind = "failed"  # no pool left that could take it: fail now, not at the deadline
        final = await _terminate(claim, outcome, log)
        await log.expire(claim.task_id, settings.ORCHD_EVENTS_RETENTION_S)
        frames = await log.read(claim.task_id, -1, 0)
        # One trip to the DB thread for all the end's writes: each trip waits behind other requests.
        released = True
        await sync_to_async(_record_all)(claim, outcome, final, frames)
    finally:
        if not released:
            await sync_to_async(release_lease)(claim.pool_id)
        await notify.abroadcast({"kind": "wake"})


def _record_all(claim: Claim, outcome: Outcome, final: str, frames: list[Frame]) -> None:
    try:
        # The transcript first, so that the end's UPDATE records it too (one write less per task).
        try:
            # Decoded here, inside both guards: a frame that failed to decode could cost the transcript, never the end.
            events = [(frame.event, data) for frame, data in zip(frames, decode_all(frames), strict=True)]
            transcript_id: str | None = store_transcript(claim, outcome, final, events)
        except Exception:
            # The end must be recorded all the same: the task would otherwise stay `running`.
            logger.exception("task.transcript_failed", extra={"task_id": claim.task_id})
            transcript_id = None
        _record_end(claim, outcome, final, transcript_id)
    finally:
        release_lease(claim.pool_id)


async def _terminate(claim: Claim, outcome: Outcome, log: EventLog) -> str:
    """Write this run's terminal frame; the final state (canceled if another terminal frame won)."""
    if outcome.kind == "canceled":
        return TaskState.CANCELED
    if outcome.kind == "completed":
        won = await log.terminate(claim.task_id, "end", outcome.end_data)
        return TaskState.COMPLETED if won is not None else TaskState.CANCELED
    won = await log.terminate(claim.task_id, "error", outcome.error or {})
    return TaskState.FAILED if won is not None else TaskState.CANCELED


@sync_to_async
def _requeue(claim: Claim, outcome: Outcome) -> bool:
    """Back to the queue, avoiding the pool that failed; False when no other pool could take it."""
    task = Task.objects.filter(id=claim.task_id).first()
    if task is None:
        return True
    avoid = sorted({*task.avoid_pools, claim.pool_id})
    request = placement_request(task.model_ref, task.engine, task.ctx, placement_of(task), extra_avoid=tuple(avoid))
    if not eligible_pools(request, pool_views())[0]:
        return False
    requeued = Task.objects.filter(id=claim.task_id, state__in=ACTIVE_STATES, started_at__isnull=True).update(
        state=TaskState.QUEUED, pool_id="", node_id="", owner="", avoid_pools=avoid
    )
    logger.warning(
        "task.requeued" if requeued else "task.requeue_skipped",
        extra={"task_id": claim.task_id, "pool_id": claim.pool_id, "error": outcome.error, "attempt": claim.attempts},
    )
    return bool(requeued)


def _record_end(claim: Claim, outcome: Outcome, final: str, transcript_id: str | None) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {
        "tokens_out": outcome.tokens_out,
        "decode_ms": outcome.decode_ms,
        "tokens_in": outcome.tokens_in,
        "finish_reason": outcome.finish_reason or ("canceled" if final == TaskState.CANCELED else ""),
        "error": outcome.error if final == TaskState.FAILED else None,
    }
    if transcript_id is not None:
        fields["transcript_artifact_id"] = transcript_id
    if not settings.ORCHD_STORE_PROMPTS:
        fields.update(prompt="", inputs=[])
    names = list(fields)
    values = [db_value(Task, name, fields[name]) for name in names]
    recorded = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in names)
    live = ", ".join(["%s"] * len(ACTIVE_STATES))
    # The final state and the budget's settlement commit together; nothing below can undo them.
    with transaction.atomic():
        ended = f'"state" = %s, "finished_at" = %s, {recorded}'
        state_params = [final, db_value(Task, "finished_at", now), *values, claim.task_id, *ACTIVE_STATES]
        changed = update(Task, ended, f'"id" = %s AND "state" IN ({live})', state_params)
        if not changed:  # a cancel got there first: keep its state, record what was really produced
            update(Task, recorded, '"id" = %s', [*values, claim.task_id])
        _spend(claim, outcome)
    try:
        _observe_end(claim, outcome, final, changed)
    except Exception:  # a lost sample of the service-time averages is not worth failing the end for
        logger.exception("task.end_metrics_failed", extra={"task_id": claim.task_id})
    logger.info(
        "task.finished",
        extra={
            "task_id": claim.task_id,
            "session_id": claim.session_id,
            "pool_id": claim.pool_id,
            "node_id": claim.node_id,
            "engine": claim.engine,
            "state": final,
            "tokens_in": outcome.tokens_in,
            "tokens_out": outcome.tokens_out,
            "decode_ms": outcome.decode_ms,
        },
    )


def _observe_end(claim: Claim, outcome: Outcome, final: str, changed: int) -> None:
    """Metrics and the service-time averages of a recorded end."""
    labels = _labels(claim)
    metrics.tokens_out_total.labels(**labels, replica_id=settings.ORCHD_REPLICA_ID).inc(outcome.tokens_out)
    if outcome.tokens_in:
        metrics.tokens_in_total.labels(**labels, replica_id=settings.ORCHD_REPLICA_ID).inc(outcome.tokens_in)
    if changed:
        metrics.tasks_completed_total.labels(engine=claim.engine, pool_id=claim.pool_id, outcome=final).inc()
    if final == TaskState.COMPLETED:
        metrics.latency_decode_ms.labels(**labels, priority=claim.priority).observe(outcome.decode_ms)
        if outcome.first_token_ms is not None:
            record_service_time(
                claim.model_ref, claim.pool_id, outcome.first_token_ms, outcome.decode_ms, outcome.tokens_out
            )


def _spend(claim: Claim, outcome: Outcome) -> None:
    ledger.settle(claim.task_id, outcome.tokens_out, outcome.decode_ms, claim.price_per_token)
