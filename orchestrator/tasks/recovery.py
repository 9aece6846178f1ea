"""Runs that lost their process or their pool.

Each dispatcher writes a heartbeat row every few seconds. A task left
`dispatched`/`running` by an owner whose heartbeat stopped is an orphan:
re-queued if it had not streamed a token, failed with WORKER_RESET
otherwise, and its lease given back — each step a compare-and-swap, so two
recovering processes cannot both act on one task.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from asgiref.sync import sync_to_async
from django.db.models import Q
from django.utils import timezone

from orchestrator.events import get_sync_event_log
from orchestrator.tasks.lifecycle import WORKER_RESET_RETRY_MS, error_data, release_lease, settle_unrun, terminate_log
from orchestrator.tasks.models import ACTIVE_STATES, DispatcherHeartbeat, Task, TaskState
from pools.models import Pool

logger = logging.getLogger("orchestrator.dispatch")

# Three missed heartbeats (5 s apart) before a dispatcher's runs are taken over.
ORPHAN_AFTER = timedelta(seconds=15)


def heartbeat(owner: str) -> None:
    DispatcherHeartbeat.objects.update_or_create(
        owner=owner, defaults={"host": socket.gethostname(), "pid": os.getpid(), "seen_at": timezone.now()}
    )


def recover_orphans(owner: str) -> list[str]:
    now = timezone.now()
    alive = set(DispatcherHeartbeat.objects.filter(seen_at__gte=now - ORPHAN_AFTER).values_list("owner", flat=True))
    alive.add(owner)
    orphans = Task.objects.active().exclude(owner__in=alive)
    recovered = [task.id for task in orphans[:200] if _recover(task, now)]
    DispatcherHeartbeat.objects.filter(seen_at__lt=now - 10 * ORPHAN_AFTER).delete()
    if recovered:
        logger.warning("tasks.orphans_recovered", extra={"tasks": recovered})
    return recovered


def _recover(task: Task, now: datetime) -> bool:
    same = Q(id=task.id, owner=task.owner, state__in=ACTIVE_STATES)
    # The first token reaches the log before `started_at` is written (beside the stream): a run
    # that died in between has streamed, and a re-run would send its tokens a second time.
    if task.started_at is None and not get_sync_event_log().stats(task.id).tokens:
        changed = Task.objects.filter(same, started_at__isnull=True).update(
            state=TaskState.QUEUED,
            pool_id="",
            node_id="",
            owner="",
            avoid_pools=sorted({*task.avoid_pools, task.pool_id}),
        )
    else:
        data = error_data(
            "WORKER_RESET",
            "The process running this task stopped.",
            retry_after_ms=WORKER_RESET_RETRY_MS,
            engine=task.engine,
            pool_id=task.pool_id,
        )
        terminate_log(task.id, "error", data)
        changed = Task.objects.filter(same).update(state=TaskState.FAILED, error=data, finished_at=now)
        if changed:
            # The row's tokens_out is written only at the end; the log counted what was streamed.
            streamed = get_sync_event_log().stats(task.id).tokens
            settle_unrun(task.id, tokens=streamed)
    if changed and task.pool_id:
        release_lease(task.pool_id)
    return bool(changed)


def lost_runs(running: dict[str, str], now: datetime) -> dict[str, str]:
    """Which of these runs (task id → pool id) must stop, and why."""
    if not running:
        return {}
    pools = {pool.id: pool for pool in Pool.objects.select_related("node").filter(id__in=set(running.values()))}
    lost = {}
    for task_id, pool_id in running.items():
        pool = pools.get(pool_id)
        if pool is None:
            lost[task_id] = "pool_removed"
        elif pool.node.status not in ("online", "stale"):
            lost[task_id] = "node_offline"
        elif pool.desired_draining and pool.drain_deadline_at is not None and pool.drain_deadline_at <= now:
            lost[task_id] = "drain"
    return lost


aheartbeat = sync_to_async(heartbeat)
arecover_orphans = sync_to_async(recover_orphans)
alost_runs = sync_to_async(lost_runs)
