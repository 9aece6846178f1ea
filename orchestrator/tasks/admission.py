"""Admission: POST /v2/tasks, every check of SPEC §3.1 in order, then persist and answer.

The task row is written in the same transaction that checks capacity, so a
202 always means "persisted"; the first frame and the dispatcher's wake-up
go out only after commit.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from catalog.models import CatalogModel
from catalog.services import check_trust
from orchestrator import metrics
from orchestrator.api.errors import ApiError, conflict, invalid_params
from orchestrator.auth.models import ApiToken
from orchestrator.auth.services import Principal
from orchestrator.budgets import ledger, ratelimit
from orchestrator.sessions.models import Session
from orchestrator.sessions.services import TurnLimitReached, open_session_turn
from orchestrator.sql import Select, all_fields, insert
from orchestrator.tasks import claims, lifecycle, notify
from orchestrator.tasks.dispatcher import Dispatcher, local_dispatcher
from orchestrator.tasks.models import PRIORITY_RANK, Task, TaskState
from orchestrator.tasks.queue import (
    Prediction,
    placement_request,
    pool_views,
    predict_start,
    queue_counts,
    service_time,
)
from orchestrator.tasks.requests import TaskRequest
from pools.models import Pool
from pools.placement import Outcome, PoolView, eligible_pools, place

logger = logging.getLogger("orchestrator.admission")

# Admission holds this lock while it counts the queue and inserts, so N web
# processes on PostgreSQL never admit past capacity (SQLite serializes writers anyway).
# It is the transaction's last lock: its session and token rows are locked before it, so
# under it admission must not wait for a session or token row, which another admission may
# hold while it waits for the lock. A drop-lru victim's reservation on them is released after
# commit (`_drop_victim`).
CAPACITY_LOCK_KEY = 0x6F726368  # "orch"
# SQLite runs one write transaction at a time: a slot freed before admission's shows in its
# `unleased` read, and one freed after it wakes the dispatchers itself after its commit, so
# a task queued while every slot is leased needs no wake-up (nor the pass it would start).
# Concurrent writers (PostgreSQL) could free one in between unseen: there, always wake.
SERIALIZED_WRITERS = connection.vendor == "sqlite"
# Above this share of capacity in use, answers carry a non-zero backoff_ms.
SATURATION = 0.8
# The statements of every admission, written once as SQL (orchestrator.sql).
_REPLAY = Select(Task, ("id", "request_digest", "admission_answer", "session_id", "token_id"), '"id" = %s')
_CATALOGUED = Select(CatalogModel, all_fields(CatalogModel), '"id" = %s')
# The token's budgets and rate, read once and locked until commit (its reservation is an UPDATE).
_TOKEN_LOCKED = Select(ApiToken, (*ledger.TOKEN_FIELDS, "requests_per_minute"), '"id" = %s', for_update=True)


@dataclass
class Admission:
    task: Task
    body: dict[str, Any]
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def admit_task(request: TaskRequest, principal: Principal, now: datetime) -> Admission:
    started = time.perf_counter()
    existing = _idempotent_replay(request)
    if existing is not None:
        return existing
    try:
        admission = _admit(request, principal, now)
    except IntegrityError:
        # The same task_id admitted concurrently by another request: answer as a retry would be.
        replay = _idempotent_replay(request)
        if replay is None:
            raise
        return replay
    except ApiError as error:
        metrics.tasks_rejected_total.labels(engine=request.engine, reason=error.code).inc()
        logger.info("task.rejected", extra={"task_id": request.task_id, "code": error.code, "engine": request.engine})
        raise
    metrics.admission_latency_ms.labels(priority=request.priority).observe((time.perf_counter() - started) * 1000)
    return admission


def _idempotent_replay(request: TaskRequest) -> Admission | None:
    task = _REPLAY.first(request.task_id)
    if task is None:
        return None
    if task.request_digest != request.digest():
        raise conflict(f"Task '{request.task_id}' exists with a different body.")
    headers = ledger.remaining_for(task.session_id, task.token_id).headers()
    return Admission(task=task, body=task.admission_answer, replayed=True, headers=headers)


def _admit(request: TaskRequest, principal: Principal, now: datetime) -> Admission:
    rows = claims.pool_rows()
    pools = pool_views(list(rows.values()))
    _check_limits(request, pools)
    price = _check_catalog(request)
    serving = _check_pools(request, pools)
    service = service_time(request.model_ref, serving)  # statistics: read before any lock
    with transaction.atomic():
        session = _open_turn(request, now)
        token = _TOKEN_LOCKED.first(principal.token_id) if principal.token_id is not None else None
        grant = _reserve_budget(session, token, request, price)
        rate = _count_rate(request, token, now)
        try:
            # Last of the locks: what it serializes across processes is only the count, the
            # room made and the insert, not the session's and the budget's statements.
            _lock_capacity()
            counts = queue_counts(request.model_ref, request.engine, PRIORITY_RANK[request.priority], now)
            queued, position = counts.queued, counts.ahead
            prediction = predict_start(position, serving, service)
            _check_deadline(request, prediction)
            victim = _make_room(request, prediction, queued)
            load = (queued - (victim is not None)) / settings.ORCHD_ADMISSION_CAPACITY
            task = _new_task(request, principal, now, position, prediction, serving, grant, load, session.created_at)
            # Nothing else waits: dispatch it now, in this transaction, rather than wake a dispatcher.
            dispatcher, pool_id = _lease_now(task, now, rows, session) if not queued else (None, None)
            insert(task)
            claim = claims.claim_of_new_task(task, rows[pool_id], _budget_left(grant), price) if pool_id else None
        except Exception:
            if rate is not None and principal.token_id is not None:
                ratelimit.undo(principal.token_id, rate)
            raise
    versions = {pool_id: pool.engine_version for pool_id, pool in rows.items()}

    def after_commit() -> None:
        # Each step whatever befell the one before: the task is persisted and must run (its
        # runner writes `started` if the announcement is missing), or a task leased here
        # would stay dispatched, with no runner, for ever.
        _announce(lifecycle.announce_admitted, task, position, prediction, serving, versions)
        if victim is not None:
            _announce(lifecycle.announce_dropped, victim, prediction)
            _announce(lifecycle.settle_dropped, victim)
        # After the announcement, so that `started` stays frame 0.
        if dispatcher is not None and claim is not None:
            _start_or_requeue(dispatcher, claim)
        elif counts.unleased or not SERIALIZED_WRITERS:
            notify.wake_dispatchers()

    transaction.on_commit(after_commit)
    metrics.tasks_enqueued_total.labels(
        engine=request.engine,
        engine_version="",
        pool_id=metrics.UNPLACED,
        replica_id=settings.ORCHD_REPLICA_ID,
        priority=request.priority,
    ).inc()
    logger.info(
        "task.admitted",
        extra={
            "task_id": task.id,
            "session_id": task.session_id,
            "engine": task.engine,
            "queue_position": position,
            "predicted_start_ms": prediction.start_ms,
        },
    )
    return Admission(task=task, body=task.admission_answer, headers=grant.remaining.headers())


def _announce(announcement: Callable[..., None], task: Task, *args: Any) -> None:
    try:
        announcement(task, *args)
    except Exception:
        logger.exception("task.announce_failed", extra={"task_id": task.id})


def _start_or_requeue(dispatcher: Dispatcher, claim: claims.Claim) -> None:
    """Hand the claim to this process's dispatcher; if its loop has just closed, queue the task again."""
    try:
        dispatcher.start_threadsafe(claim)
    except RuntimeError:  # the loop closed between the lease and now (shutdown)
        logger.warning("task.fast_path_requeued", extra={"task_id": claim.task_id})
        requeued = Task.objects.filter(
            id=claim.task_id, state=TaskState.DISPATCHED, owner=dispatcher.owner, started_at__isnull=True
        ).update(state=TaskState.QUEUED, pool_id="", node_id="", owner="")
        if requeued:
            lifecycle.release_lease(claim.pool_id)
        notify.wake_dispatchers()


def _lease_now(
    task: Task, now: datetime, rows: dict[str, Pool], session: Session
) -> tuple[Dispatcher | None, str | None]:
    """Lease a slot for the new task on behalf of this process's dispatcher, if one runs here."""
    dispatcher = local_dispatcher()
    if dispatcher is None:
        return None, None
    offset = dispatcher.next_round_robin()
    return dispatcher, claims.lease_for_new_task(task, dispatcher.owner, now, rows, session.last_pool_id, offset)


def _budget_left(grant: ledger.Grant) -> ledger.Remaining:
    """What a dispatcher pass would compute: the budgets with this task's reservation still unspent."""
    left = grant.remaining
    return ledger.Remaining(
        tokens=None if left.tokens is None else left.tokens + grant.reserved_tokens,
        time_ms=left.time_ms,
        cost=None if left.cost is None else left.cost + grant.reserved_cost,
    )


def _reserve_budget(session: Session, token: ApiToken | None, request: TaskRequest, price: Decimal) -> ledger.Grant:
    try:
        return ledger.reserve(session, token, request.max_tokens, price)
    except ledger.BudgetExceeded as exc:
        raise ApiError(429, "BUDGET_EXCEEDED", exc.message, policy_label=exc.policy_label) from exc


def _count_rate(request: TaskRequest, token: ApiToken | None, now: datetime) -> ratelimit.RateDecision | None:
    if token is None or not token.requests_per_minute:
        return None
    limit = token.requests_per_minute
    decision = ratelimit.consume(token.pk, limit, now)
    if not decision.allowed:
        raise ApiError(
            429,
            "ADMISSION_REJECT",
            f"This token may start {limit} tasks per minute.",
            retry_after_ms=decision.retry_after_ms,
            policy_label="rate.rpm",
            engine=request.engine,
        )
    return decision


def _check_limits(request: TaskRequest, pools: list[PoolView]) -> None:
    reported = [pool.ctx_max for pool in pools if request.model_ref in pool.models and pool.ctx_max]
    ctx_limit = max(reported) if reported else settings.ORCHD_CTX_MAX
    if request.ctx > ctx_limit:
        raise invalid_params(
            f"ctx {request.ctx} exceeds the largest context available ({ctx_limit}).", {"ctx": [f"at most {ctx_limit}"]}
        )
    if request.max_tokens > settings.ORCHD_MAX_TOKENS_MAX:
        limit = settings.ORCHD_MAX_TOKENS_MAX
        raise invalid_params(f"max_tokens exceeds {limit}.", {"max_tokens": [f"at most {limit}"]})


def _check_catalog(request: TaskRequest) -> Decimal:
    """Refuse a retired or untrusted model; the price per token (as `ledger.price_per_token`)."""
    model = _CATALOGUED.first(request.model_ref)
    if model is None:
        return Decimal(0)  # served but not catalogued: nothing to enforce
    if model.state == "Retired":
        raise ApiError(409, "MODEL_DEPRECATED", f"Model '{request.model_ref}' is retired.")
    decision = check_trust(model)
    if not decision.allowed:
        raise ApiError(400, "UNTRUSTED_ARTIFACT", decision.message, details={"reason": decision.reason})
    return (model.cost_per_1k_tokens or Decimal(0)) / 1000


def _check_pools(request: TaskRequest, pools: list[PoolView]) -> list[PoolView]:
    """The pools that could serve this task (ignoring free slots), or the right 4xx/5xx."""
    placement = request.placement
    if placement.mode == "pin":
        pinned = next((pool for pool in pools if pool.pool_id == placement.pin_pool_id), None)
        if pinned is None:
            raise invalid_params(
                f"Pinned pool '{placement.pin_pool_id}' does not exist.", {"placement": ["unknown pin_pool_id"]}
            )
        if not (pinned.ready and pinned.node_online and not pinned.draining):
            raise ApiError(
                503,
                "POOL_UNREADY",
                f"Pool '{pinned.pool_id}' is not ready.",
                retry_after_ms=5000,
                pool_id=pinned.pool_id,
                engine=request.engine,
            )
    decision = place(placement_request(request.model_ref, request.engine, request.ctx, placement), pools)
    if decision.outcome == Outcome.NO_CANDIDATE:
        metrics.placement_decisions_total.labels(
            outcome="no_candidate", pinned=str(decision.pinned).lower(), fallback="false"
        ).inc()
        raise ApiError(
            503,
            "POOL_UNAVAILABLE",
            f"No online, ready pool serves model '{request.model_ref}' on engine '{request.engine}'.",
            retry_after_ms=5000,
            engine=request.engine,
            details={"filters": decision.filtered},
        )
    eligible, _ = eligible_pools(placement_request(request.model_ref, request.engine, request.ctx, placement), pools)
    return eligible


def _lock_capacity() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CAPACITY_LOCK_KEY])


def _open_turn(request: TaskRequest, now: datetime) -> Session:
    """Open the session's turn; the session row (its `created_at` identifies the row)."""
    try:
        return open_session_turn(request.session_id, now, max_turns=settings.ORCHD_SESSION_MAX_TURNS or None)
    except TurnLimitReached as exc:
        raise ApiError(
            429,
            "BUDGET_EXCEEDED",
            f"Session '{request.session_id}' has used all its turns.",
            policy_label="budget.turns",
        ) from exc


def _check_deadline(request: TaskRequest, prediction: Prediction) -> None:
    if prediction.observed and prediction.start_ms > request.deadline_ms:
        raise ApiError(
            400,
            "DEADLINE_UNMET",
            f"Predicted start in {prediction.start_ms} ms is after the deadline of {request.deadline_ms} ms.",
            policy_label="deadline",
            engine=request.engine,
        )


def _make_room(request: TaskRequest, prediction: Prediction, queued: int) -> Task | None:
    """Check capacity (`queued` tasks wait now); under drop-lru, drop the victim and return it."""
    if queued < settings.ORCHD_ADMISSION_CAPACITY:
        return None
    policy = settings.ORCHD_ADMISSION_POLICY
    metrics.admission_backpressure_events_total.labels(engine=request.engine, policy=policy).inc()
    retry_ms = max(1000, int(prediction.service_ms))
    if policy == "reject":
        raise ApiError(
            429,
            "ADMISSION_REJECT",
            "The queue is full.",
            retry_after_ms=retry_ms,
            policy_label="reject",
            engine=request.engine,
        )
    victim = _drop_victim(PRIORITY_RANK[request.priority])
    if victim is None:
        raise ApiError(
            429,
            "QUEUE_FULL_DROP_LRU",
            "The queue is full and holds nothing of lower or equal priority to drop.",
            retry_after_ms=retry_ms,
            policy_label="drop-lru",
            engine=request.engine,
        )
    return victim


def _drop_victim(rank: int) -> Task | None:
    """Drop the oldest queued task of the lowest priority not higher than the newcomer's.

    Under the capacity lock: on PostgreSQL the victim's row is taken only if no other
    transaction holds it (SKIP LOCKED; one that does is being claimed, so leaving the
    queue), and its reservation is released after commit (`lifecycle.settle_dropped`),
    since its session and token rows may be held by an admission waiting for the lock.
    A priority's tasks all held: None rather than a victim of a higher priority.
    """
    for victim_rank in sorted({r for r in PRIORITY_RANK.values() if r >= rank}, reverse=True):
        candidates = Task.objects.queued().filter(priority_rank=victim_rank).order_by("created_at", "id")
        victim = candidates.select_for_update(skip_locked=True).first()
        if victim is not None and lifecycle.drop_queued(victim):
            return victim
        if candidates.exists():
            return None
    return None


def _new_task(
    request: TaskRequest,
    principal: Principal,
    now: datetime,
    position: int,
    prediction: Prediction,
    serving: list[PoolView],
    grant: ledger.Grant,
    load: float,
    session_started_at: datetime,
) -> Task:
    task = Task(
        id=request.task_id,
        session_id=request.session_id,
        workload=request.workload,
        model_ref=request.model_ref,
        engine=request.engine,
        ctx=request.ctx,
        priority=request.priority,
        priority_rank=PRIORITY_RANK[request.priority],
        max_tokens=grant.max_tokens,
        max_tokens_requested=request.max_tokens,
        reserved_tokens=grant.reserved_tokens,
        reserved_cost=grant.reserved_cost,
        session_started_at=session_started_at,
        deadline_ms=request.deadline_ms,
        deadline_at=now + timedelta(milliseconds=request.deadline_ms),
        prompt=request.prompt,
        inputs=list(request.inputs),
        options=request.options(),
        request_digest=request.digest(),
        token_id=principal.token_id,
        state=TaskState.QUEUED,
        created_at=now,
    )
    task.admission_answer = _answer(task, position, prediction, serving, load)
    return task


def _answer(task: Task, position: int, prediction: Prediction, serving: list[PoolView], load: float) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "queue_position": position,
        "predicted_start_ms": prediction.start_ms,
        "backoff_ms": _backoff_ms(prediction, serving, load),
        "streams": {"sse": f"/v2/tasks/{task.id}/events", "sse_verbose": f"/v2/tasks/{task.id}/events?verbose=true"},
        # Admission requires a ready pool serving the model, so nothing needs preparing.
        "preparation": {"steps": []},
    }


def _backoff_ms(prediction: Prediction, serving: list[PoolView], load: float) -> int:
    """Non-zero once `load` (queued tasks over capacity) passes SATURATION."""
    if load < SATURATION:
        return 0
    slots = max(1, sum(pool.slots_total for pool in serving))
    return int(math.ceil(prediction.service_ms / slots * load))
