"""Celery jobs of the sessions app ("task" is reserved for inference tasks)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from orchestrator.sessions import services


@shared_task(name="orchestrator.sessions.jobs.purge_expired_sessions")
def purge_expired_sessions() -> int:
    """Beat, every 60 s: remove sessions whose TTL has passed (SPEC §4)."""
    return services.purge_expired_sessions(timezone.now())
