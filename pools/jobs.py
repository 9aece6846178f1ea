"""Celery jobs of the pools app."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from pools.services import enforce_drains, probe_static_pools


@shared_task(name="pools.jobs.enforce_drains", ignore_result=True)
def enforce_drains_job() -> dict[str, list[str]]:
    """Every 5 s (beat): end overdue drains and mark finished ones."""
    return enforce_drains(timezone.now())


@shared_task(name="pools.jobs.probe_static_pools", ignore_result=True)
def probe_static_pools_job() -> dict[str, bool]:
    """Every 10 s (beat): health-probe the standalone engines registered without an agent."""
    return probe_static_pools()
