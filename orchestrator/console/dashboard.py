"""What the fleet dashboard shows, read in a fixed number of queries whatever the fleet's size.

Nodes by status, every pool's slots and state, the queue by priority,
tokens/s and first-token latency per minute over the last hour, recent
failures and recent operator actions.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.utils.safestring import SafeString

from nodes.models import Node, NodeStatus
from orchestrator.audit.models import AuditEvent
from orchestrator.console.charts import line_chart
from orchestrator.console.display import age, node_badge, pool_badge, pool_progress, slot_bar
from orchestrator.tasks.models import Priority, Task, TaskState
from pools.models import Pool

WINDOW_MINUTES = 60
# Finished tasks are found through the created_at index: a task finishing in
# the last hour but admitted more than this long ago is left out of the charts.
LOOKBACK = timedelta(hours=3)
FAILED_STATES = (TaskState.FAILED, TaskState.EXPIRED, TaskState.DROPPED)
FAILURES_SHOWN = 10
FAILURES_LOOKBACK = timedelta(hours=24)
AUDIT_SHOWN = 8
X_LABELS = ("60 min ago", "30 min ago", "now")


@dataclass(frozen=True)
class PoolRow:
    id: str
    node_id: str
    engine: str
    models: str
    slots: SafeString
    status: SafeString
    heartbeat: str
    progress: str


@dataclass(frozen=True)
class QueueRow:
    priority: str
    depth: int
    percent: int


@dataclass(frozen=True)
class FailureRow:
    task_id: str
    state: str
    code: str
    message: str
    pool_id: str
    when: str


@dataclass(frozen=True)
class Dashboard:
    nodes: list[tuple[SafeString, int]]
    pools: list[PoolRow]
    queue: list[QueueRow]
    running: int
    capacity: int
    tokens_per_s_now: float
    first_token_median_ms: int | None
    tokens_chart: SafeString
    first_token_chart: SafeString
    failures: list[FailureRow]
    audit: list[AuditEvent]


def build_dashboard(now: datetime) -> Dashboard:
    tokens, latency = _per_minute(now)
    samples = [value for bucket in latency for value in bucket]
    return Dashboard(
        nodes=_nodes_by_status(),
        pools=_pools(now),
        queue=_queue(),
        running=Task.objects.active().count(),
        capacity=settings.ORCHD_ADMISSION_CAPACITY,
        tokens_per_s_now=round(sum(tokens[-5:]) / 300, 1),
        first_token_median_ms=round(statistics.median(samples)) if samples else None,
        tokens_chart=line_chart(
            [round(total / 60, 2) for total in tokens], label="tokens/s per minute", unit="", x_labels=X_LABELS
        ),
        first_token_chart=line_chart(
            [round(statistics.mean(bucket)) if bucket else None for bucket in latency],
            label="mean first-token latency per minute (ms)",
            unit=" ms",
            x_labels=X_LABELS,
        ),
        failures=_failures(now),
        audit=list(AuditEvent.objects.all()[:AUDIT_SHOWN]),
    )


def _nodes_by_status() -> list[tuple[SafeString, int]]:
    counts = dict(Node.objects.order_by().values_list("status").annotate(n=Count("id")))
    return [(node_badge(status), counts.get(status, 0)) for status in NodeStatus.values]


def _pools(now: datetime) -> list[PoolRow]:
    return [
        PoolRow(
            id=pool.id,
            node_id=pool.node_id,
            engine=pool.engine,
            models=", ".join(pool.model_refs or []),
            slots=slot_bar(pool.active_leases, pool.slots_total),
            status=pool_badge(pool),
            heartbeat=age(pool.last_heartbeat_at or pool.node.last_heartbeat_at, now),
            progress=pool_progress(pool, now),
        )
        for pool in Pool.objects.select_related("node").order_by("node_id", "id")
    ]


def _queue() -> list[QueueRow]:
    counts = dict(Task.objects.queued().order_by().values_list("priority").annotate(n=Count("id")))
    capacity = settings.ORCHD_ADMISSION_CAPACITY
    return [
        QueueRow(priority, counts.get(priority, 0), min(100, round(100 * counts.get(priority, 0) / capacity)))
        for priority in Priority.values
    ]


def _per_minute(now: datetime) -> tuple[list[int], list[list[float]]]:
    """Per minute of the last hour (oldest first): tokens finished, and first-token latencies (ms).

    Buckets end at `now`, so each one is a whole minute and the last is not
    a partial one. Latency is from dispatch (or admission) to the first token.
    """
    start = now - timedelta(minutes=WINDOW_MINUTES)
    tokens = [0] * WINDOW_MINUTES
    latency: list[list[float]] = [[] for _ in range(WINDOW_MINUTES)]
    rows = (
        Task.objects.filter(created_at__gte=now - LOOKBACK, finished_at__gte=start)
        .order_by()
        .values_list("finished_at", "tokens_out", "started_at", "dispatched_at", "created_at")
    )
    for finished_at, tokens_out, started_at, dispatched_at, created_at in rows.iterator():
        if finished_at is not None:  # always, by the filter; for the type checker
            tokens[_bucket(finished_at, start)] += tokens_out
        if started_at is not None and started_at >= start:
            waited = started_at - (dispatched_at or created_at)
            latency[_bucket(started_at, start)].append(max(0.0, waited.total_seconds() * 1000))
    return tokens, latency


def _bucket(moment: datetime, start: datetime) -> int:
    return min(WINDOW_MINUTES - 1, max(0, int((moment - start).total_seconds() // 60)))


def _failures(now: datetime) -> list[FailureRow]:
    tasks = (
        Task.objects.filter(state__in=FAILED_STATES, created_at__gte=now - FAILURES_LOOKBACK)
        .order_by("-created_at")
        .only("id", "state", "error", "pool_id", "finished_at", "created_at")[:FAILURES_SHOWN]
    )
    return [
        FailureRow(
            task_id=task.id,
            state=task.state,
            code=str((task.error or {}).get("code") or _implied_code(task.state)),
            message=str((task.error or {}).get("message", ""))[:160],
            pool_id=task.pool_id,
            when=age(task.finished_at or task.created_at, now),
        )
        for task in tasks
    ]


IMPLIED_CODES: dict[str, str] = {TaskState.EXPIRED: "DEADLINE_UNMET", TaskState.DROPPED: "QUEUE_FULL_DROP_LRU"}


def _implied_code(state: str) -> str:
    """Expired and dropped tasks carry their code in the stream, not the row."""
    return IMPLIED_CODES.get(state, "")
