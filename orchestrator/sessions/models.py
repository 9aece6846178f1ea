"""Sessions: metadata shared by the tasks naming the same `session_id` (SPEC §4)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models


class SessionQuerySet(models.QuerySet["Session"]):
    def live(self, now: datetime) -> SessionQuerySet:
        return self.filter(expires_at__gt=now)

    def expired(self, now: datetime) -> SessionQuerySet:
        return self.filter(expires_at__lte=now)


class Session(models.Model):
    """A conversation's counters and budgets; never prompts or outputs.

    `expires_at` is precomputed at every turn, so "live" is a comparison with
    the clock and the purge job reads an index. An expired row counts as
    absent everywhere, even before the job removes it. Counters change only
    through F-expression updates in the services, so concurrent tasks of one
    session never lose each other's spend.
    """

    id = models.CharField(primary_key=True, max_length=128)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    turns = models.PositiveIntegerField(default=0)
    kv_bytes = models.BigIntegerField(default=0)
    kv_warmth = models.BooleanField(default=False)
    last_pool_id = models.CharField(max_length=128, null=True, blank=True)

    tokens_budget = models.BigIntegerField(null=True, blank=True, help_text="Output tokens allowed; empty = unlimited.")
    time_budget_ms = models.BigIntegerField(null=True, blank=True, help_text="Decode time allowed; empty = unlimited.")
    cost_budget = models.DecimalField(
        max_digits=14, decimal_places=6, null=True, blank=True, help_text="Cost allowed; empty = unlimited."
    )
    tokens_spent = models.BigIntegerField(default=0)
    time_spent_ms = models.BigIntegerField(default=0)
    cost_spent = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    # Held by admitted tasks that have not ended yet, so concurrent tasks never overspend.
    tokens_reserved = models.BigIntegerField(default=0)
    cost_reserved = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))

    objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ["-expires_at"]

    def __str__(self) -> str:
        return self.id

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at <= now

    def ttl_ms_remaining(self, now: datetime) -> int:
        return max(0, int((self.expires_at - now).total_seconds() * 1000))

    def has_turns_left(self, max_turns: int) -> bool:
        """Whether one more turn fits under `max_turns` (0 = unlimited)."""
        return max_turns == 0 or self.turns < max_turns

    @property
    def tokens_budget_remaining(self) -> int | None:
        if self.tokens_budget is None:
            return None
        return max(0, self.tokens_budget - self.tokens_spent - self.tokens_reserved)

    @property
    def time_budget_remaining_ms(self) -> int | None:
        return None if self.time_budget_ms is None else max(0, self.time_budget_ms - self.time_spent_ms)

    @property
    def cost_budget_remaining(self) -> Decimal | None:
        if self.cost_budget is None:
            return None
        return max(Decimal(0), self.cost_budget - self.cost_spent - self.cost_reserved)
