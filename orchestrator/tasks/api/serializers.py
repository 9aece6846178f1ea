"""Task status (SPEC §3.6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.tasks.models import Task, TaskState
from orchestrator.tasks.queue import queued_ahead


def rfc3339(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def task_status(task: Task, *, with_position: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task_id": task.id,
        "session_id": task.session_id,
        "state": task.state,
        "workload": task.workload,
        "priority": task.priority,
        "model_ref": task.model_ref,
        "engine": task.engine,
        "pool_id": task.pool_id or None,
        "node_id": task.node_id or None,
        "tokens_in": task.tokens_in,
        "tokens_out": task.tokens_out,
        "decode_ms": task.decode_ms,
        "finish_reason": task.finish_reason or None,
        "created_at": rfc3339(task.created_at),
        "started_at": rfc3339(task.started_at),
        "finished_at": rfc3339(task.finished_at),
        "transcript_artifact_id": task.transcript_artifact_id or None,
    }
    if task.state == TaskState.QUEUED and with_position:
        body["queue_position"] = queued_ahead(task.model_ref, task.engine, task.priority_rank, task.created_at, task.id)
    if task.state == TaskState.CANCELED:
        body["cancel_reason"] = task.cancel_reason or None
    if task.error:
        body["error"] = task.error
    return body
