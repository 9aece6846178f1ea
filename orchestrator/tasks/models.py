"""Inference tasks: one row per admitted task, written on state changes only."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class TaskState(models.TextChoices):
    QUEUED = "queued", "queued"
    DISPATCHED = "dispatched", "dispatched"
    RUNNING = "running", "running"
    COMPLETED = "completed", "completed"
    FAILED = "failed", "failed"
    CANCELED = "canceled", "canceled"
    EXPIRED = "expired", "expired"
    DROPPED = "dropped", "dropped"


TERMINAL_STATES = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELED, TaskState.EXPIRED, TaskState.DROPPED)
ACTIVE_STATES = (TaskState.DISPATCHED, TaskState.RUNNING)


class Priority(models.TextChoices):
    INTERACTIVE = "interactive", "interactive"
    BATCH = "batch", "batch"


# Dispatch order: a lower rank goes first (SPEC §3.2: interactive before batch).
PRIORITY_RANK: dict[str, int] = {Priority.INTERACTIVE: 0, Priority.BATCH: 1}


class Workload(models.TextChoices):
    COMPLETION = "completion", "completion"
    EMBEDDING = "embedding", "embedding"
    RERANK = "rerank", "rerank"


class TaskQuerySet(models.QuerySet["Task"]):
    def queued(self) -> TaskQuerySet:
        return self.filter(state=TaskState.QUEUED)

    def in_dispatch_order(self) -> TaskQuerySet:
        return self.order_by("priority_rank", "created_at", "id")

    def active(self) -> TaskQuerySet:
        return self.filter(state__in=ACTIVE_STATES)


class Task(models.Model):
    """An admitted inference task.

    The prompt and inputs are kept only while the task can still be
    dispatched (a task that got 202 must survive a restart); they are erased
    when it ends unless ORCHD_STORE_PROMPTS is on.
    """

    id = models.CharField(primary_key=True, max_length=128)
    session_id = models.CharField(max_length=128, db_index=True)
    workload = models.CharField(max_length=16, choices=Workload.choices)
    model_ref = models.CharField(max_length=128)
    engine = models.CharField(max_length=16)
    ctx = models.PositiveIntegerField()
    priority = models.CharField(max_length=16, choices=Priority.choices)
    priority_rank = models.PositiveSmallIntegerField()
    max_tokens = models.PositiveIntegerField()
    deadline_ms = models.PositiveBigIntegerField()
    deadline_at = models.DateTimeField()
    prompt = models.TextField(blank=True, default="")
    inputs = models.JSONField(default=list, blank=True)
    options = models.JSONField(default=dict, blank=True, help_text="seed, determinism, kv_hint, placement, ...")
    request_digest = models.CharField(max_length=64, help_text="SHA-256 of the admitted body, for idempotent retries")
    token_id = models.BigIntegerField(null=True, blank=True, help_text="the API token that submitted it")

    state = models.CharField(max_length=16, choices=TaskState.choices, default=TaskState.QUEUED)
    pool_id = models.CharField(max_length=128, blank=True, default="")
    node_id = models.CharField(max_length=128, blank=True, default="")
    engine_version = models.CharField(max_length=64, blank=True, default="")
    owner = models.CharField(max_length=64, blank=True, default="", help_text="dispatcher process running it")
    attempts = models.PositiveSmallIntegerField(default=0)
    avoid_pools = models.JSONField(default=list, blank=True, help_text="pools that failed this task before a token")
    admission_answer = models.JSONField(default=dict, blank=True, help_text="the 202 body, replayed on retries")

    created_at = models.DateTimeField()
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="first token")
    finished_at = models.DateTimeField(null=True, blank=True)

    tokens_in = models.PositiveIntegerField(null=True, blank=True)
    tokens_out = models.PositiveIntegerField(default=0)
    decode_ms = models.PositiveIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=16, blank=True, default="")
    cancel_reason = models.CharField(max_length=16, blank=True, default="")
    error = models.JSONField(null=True, blank=True)
    transcript_artifact_id = models.CharField(max_length=80, blank=True, default="")

    # Budgets (orchestrator.budgets): what admission reserved, settled exactly once at the end.
    max_tokens_requested = models.PositiveIntegerField(null=True, blank=True)
    reserved_tokens = models.PositiveIntegerField(default=0)
    reserved_cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    budget_settled = models.BooleanField(default=False)
    # Which session row holds the reservation: a session deleted or restarted since is another row.
    session_started_at = models.DateTimeField(null=True, blank=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        indexes = [
            # The dispatcher's scan: queued tasks in priority, then FIFO order.
            models.Index(fields=["state", "priority_rank", "created_at"], name="task_queue_order"),
            # Queue positions (admission, a task's status): every column they read, so counting
            # the tasks ahead reads this index alone, never the rows (a deep queue made each
            # admission read every queued row of its model: 1.3 ms at 3,000 queued).
            models.Index(
                fields=["state", "model_ref", "engine", "priority_rank", "created_at", "id"],
                name="task_queue_position",
            ),
            # The expiry sweep: queued tasks past their deadline.
            models.Index(fields=["state", "deadline_at"], name="task_deadline"),
            # Recovery: running tasks of a given dispatcher process.
            models.Index(fields=["state", "owner"], name="task_owner"),
            models.Index(fields=["-created_at"], name="task_newest_first"),
            # Reservations never released (lifecycle.settle_ended_unrun): only unsettled tasks,
            # the live ones and the few ended ones not settled yet.
            models.Index(fields=["finished_at"], condition=models.Q(budget_settled=False), name="task_unsettled"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


class DispatcherHeartbeat(models.Model):
    """Liveness of each process that runs a dispatcher; orphans are found by its absence."""

    owner = models.CharField(primary_key=True, max_length=64)
    host = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(default=0)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.owner


class ServiceTime(models.Model):
    """Observed service times per (model, pool), as EWMAs; predictions use only these."""

    model_ref = models.CharField(max_length=128)
    pool_id = models.CharField(max_length=128)
    first_token_ms = models.FloatField()
    decode_ms_per_token = models.FloatField()
    total_ms = models.FloatField()
    samples = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_ref", "pool_id"], name="service_time_per_pool")]

    def __str__(self) -> str:
        return f"{self.model_ref} on {self.pool_id}"
