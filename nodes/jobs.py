"""Celery jobs of the node registry."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from nodes.services import expire_stale_nodes


@shared_task(name="nodes.jobs.expire_stale_nodes", ignore_result=True)
def expire_stale_nodes_job() -> dict[str, list[str]]:
    """Every 5 s (beat): online → stale → offline by the deadlines heartbeats stored."""
    return expire_stale_nodes(timezone.now())
