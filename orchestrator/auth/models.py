"""API tokens: random secrets stored only as a SHA-256 hash."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Role(models.TextChoices):
    CLIENT = "client", "client"
    NODE = "node", "node"
    OPERATOR = "operator", "operator"


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def usable(self, now: datetime) -> ApiTokenQuerySet:
        """Not revoked and not expired at `now`."""
        return self.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))

    def usable_now(self) -> ApiTokenQuerySet:
        return self.usable(timezone.now())


class ApiToken(models.Model):
    """A bearer credential with one role, an optional expiry and optional budgets.

    The token value is shown once at creation; only its SHA-256 is kept. A
    SHA-256 without salt is enough here because the value carries 256 bits of
    randomness: there is nothing to brute-force.
    """

    name = models.CharField(max_length=100)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CLIENT)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    fingerprint = models.CharField(
        max_length=6, editable=False, help_text="First 6 hex chars of SHA-256; used in logs."
    )
    node_id = models.CharField(
        max_length=128, blank=True, default="", help_text="For node tokens: the node this token may act for."
    )
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    tokens_budget = models.BigIntegerField(null=True, blank=True, help_text="Output tokens allowed; empty = unlimited.")
    cost_budget = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_spent = models.BigIntegerField(default=0, editable=False)
    cost_spent = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0), editable=False)
    # Held by admitted tasks that have not ended yet (see orchestrator.budgets).
    tokens_reserved = models.BigIntegerField(default=0, editable=False)
    cost_reserved = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0), editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "API token"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role}, token:{self.fingerprint})"

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class RateEvent(models.Model):
    """One admission by a token with a requests-per-minute limit (embedded mode; Redis otherwise).

    Rows older than the window are deleted as new ones are counted.
    """

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="rate_events")
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["token", "at"], name="rate_event_window")]

    def __str__(self) -> str:
        return f"{self.token_id}@{self.at.isoformat()}"
