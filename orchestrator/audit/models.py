"""One row per operator action, from the admin, the API or the command line."""

from __future__ import annotations

from django.db import models


class Source(models.TextChoices):
    ADMIN = "admin", "admin"
    API = "api", "API"
    CLI = "cli", "command line"


class Outcome(models.TextChoices):
    SUCCESS = "success", "success"
    NOOP = "noop", "no change"
    REFUSED = "refused", "refused"
    ERROR = "error", "error"


class AuditEvent(models.Model):
    """An operator action and its outcome. Written once, never edited.

    The target is named by type and id, not by a foreign key: the row must
    outlive the pool, node or token it names (a deregistered node's pools
    are deleted, and the audit trail of that is the point).
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, help_text="admin username, `token:<fp6>` for the API, or `cli`")
    source = models.CharField(max_length=8, choices=Source.choices)
    action = models.CharField(max_length=64, help_text="e.g. pool.drain, task.cancel, token.revoke")
    target_type = models.CharField(max_length=64, help_text="e.g. pools.pool")
    target_id = models.CharField(max_length=255)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    details = models.JSONField(default=dict, blank=True)
    correlation_id = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The admin's usual questions: "what happened to this pool", "what did alice do".
            models.Index(fields=["target_type", "target_id", "-created_at"], name="audit_target"),
            models.Index(fields=["actor", "-created_at"], name="audit_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target_id}: {self.outcome}"
