"""Recording operator actions. Recording never breaks the action it records.

Admin actions, API views and management commands call `record()` (or wrap
the service call in `audited()`, which also records refusals and errors).
A failure to write the row is logged and swallowed: an operator draining a
pool during an incident must not be stopped by the audit table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction

from orchestrator import logs
from orchestrator.api.errors import ApiError
from orchestrator.audit.models import AuditEvent, Outcome, Source

logger = logging.getLogger("orchestrator.audit")

Target = models.Model | tuple[str, str]

__all__ = ["Attempt", "Outcome", "Source", "api_actor", "audited", "record"]


@dataclass
class Attempt:
    """What the wrapped block decided: its outcome (success unless told) and extra details."""

    outcome: str = Outcome.SUCCESS
    details: dict[str, Any] = field(default_factory=dict)


def api_actor(user: object) -> str:
    """The audit name of an API caller: the Principal's label (`token:<fp6>`, `env`, `localhost`)."""
    label = getattr(user, "label", None)
    return str(label) if label else "anonymous"


def record(
    actor: str, action: str, target: Target, outcome: str = Outcome.SUCCESS, *, source: str, **details: Any
) -> AuditEvent | None:
    """Store one audit event; None (and a log line) when it could not be stored."""
    target_type, target_id = _target(target)
    try:
        # A savepoint, so a failed insert cannot poison the caller's transaction.
        with transaction.atomic():
            event = AuditEvent.objects.create(
                actor=actor[:150],
                source=source,
                action=action,
                target_type=target_type,
                target_id=target_id[:255],
                outcome=outcome,
                details=_plain(details),
                correlation_id=logs.correlation_id() or "",
            )
    except Exception:
        logger.exception("audit.record_failed", extra={"audit_action": action, "target_id": target_id})
        return None
    logger.info(
        "audit.recorded",
        extra={"audit_action": action, "actor": actor, "target_id": target_id, "outcome": outcome, "source": source},
    )
    return event


@contextmanager
def audited(actor: str, action: str, target: Target, *, source: str, **details: Any) -> Iterator[Attempt]:
    """Record the block's outcome: success (or what it sets), refused on an ApiError, error otherwise."""
    attempt = Attempt(details=dict(details))
    try:
        yield attempt
    except ApiError as exc:
        record(actor, action, target, Outcome.REFUSED, source=source, **attempt.details, error=exc.code)
        raise
    except Exception as exc:
        record(actor, action, target, Outcome.ERROR, source=source, **attempt.details, error=type(exc).__name__)
        raise
    record(actor, action, target, attempt.outcome, source=source, **attempt.details)


def _target(target: Target) -> tuple[str, str]:
    if isinstance(target, tuple):
        return target
    return target._meta.label_lower, str(target.pk)


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe details (dates, decimals and ids become strings)."""
    plain: dict[str, Any] = json.loads(json.dumps(details, default=str))
    return plain
