"""Tasks nobody watches (SPEC §3.2): never attached in time, or left and not back in time."""

from __future__ import annotations

from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.conf import settings

from orchestrator.events import get_event_log
from orchestrator.tasks.models import Task


async def find_abandoned(running_task_ids: list[str], now: datetime) -> list[str]:
    attach_s, grace_s = settings.ORCHD_ATTACH_TIMEOUT_S, settings.ORCHD_DETACH_GRACE_S
    if not attach_s and not grace_s:
        return []
    youngest = now - timedelta(seconds=min(s for s in (attach_s, grace_s) if s))
    candidates = await _candidates(running_task_ids, youngest)
    log = get_event_log()
    now_ms = int(now.timestamp() * 1000)
    abandoned = []
    for task_id, created_at in candidates:
        stats = await log.stats(task_id)
        if (
            not stats.terminated
            and stats.watchers == 0
            and _is_abandoned(stats.last_detach_ms, created_at, now, now_ms)
        ):
            abandoned.append(task_id)
    return abandoned


def _is_abandoned(last_detach_ms: int | None, created_at: datetime, now: datetime, now_ms: int) -> bool:
    attach_s, grace_s = settings.ORCHD_ATTACH_TIMEOUT_S, settings.ORCHD_DETACH_GRACE_S
    if last_detach_ms is None:  # nobody ever attached
        return bool(attach_s) and (now - created_at).total_seconds() >= attach_s
    return bool(grace_s) and now_ms - last_detach_ms >= grace_s * 1000


@sync_to_async
def _candidates(running_task_ids: list[str], youngest: datetime) -> list[tuple[str, datetime]]:
    queued = list(Task.objects.queued().filter(created_at__lte=youngest).values_list("id", "created_at")[:1000])
    running = list(
        Task.objects.filter(id__in=running_task_ids, created_at__lte=youngest).values_list("id", "created_at")
    )
    return queued + running
