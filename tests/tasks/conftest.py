"""The live fixtures (`web`, `operator_token`) come from the `tests.support.live` plugin."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from orchestrator.tasks.models import Task, TaskState
from tests.support.live import Client, add_pool, task_body

__all__ = ["Client", "add_pool", "queued_task", "task_body"]


def queued_task(task_id: str, created_at: datetime, **fields: Any) -> Task:
    """An unsaved task row as admission writes one, queued unless `fields` say otherwise."""
    values: dict[str, Any] = {
        "session_id": "s",
        "workload": "completion",
        "model_ref": "tiny",
        "engine": "llamacpp",
        "ctx": 256,
        "priority": "batch",
        "priority_rank": 2,
        "max_tokens": 8,
        "deadline_ms": 60_000,
        "deadline_at": created_at + timedelta(minutes=1),
        "state": TaskState.QUEUED,
    }
    return Task(id=task_id, created_at=created_at, **{**values, **fields})
