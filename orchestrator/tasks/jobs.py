"""Celery jobs of the data plane."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from orchestrator.tasks import tally
from orchestrator.tasks.lifecycle import expire_overdue_tasks


@shared_task(name="orchestrator.tasks.jobs.expire_queued_tasks", ignore_result=True)
def expire_queued_tasks() -> list[str]:
    """Every 5 s (beat): expire queued tasks past their deadline.

    Only with a shared event log (REDIS_URL): the SSE error frame must reach
    the stream clients read. In the embedded setup the log lives in the web
    process, whose dispatcher runs the same sweep every second.
    """
    if not settings.REDIS_URL:
        return []
    return expire_overdue_tasks(timezone.now())


@shared_task(name="orchestrator.tasks.jobs.fold_queue_tally", ignore_result=True)
def fold_queue_tally() -> int:
    """Every 5 s (beat), PostgreSQL: the queue's deltas into its tally (`tally.fold`).

    Each web process's dispatcher folds every second already; this keeps the
    deltas few while no web process runs one. The number of keys changed.
    """
    return tally.fold()
