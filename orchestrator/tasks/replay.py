"""Frames of a task whose live log is gone: from its transcript, or its final state (SPEC §3.4)."""

from __future__ import annotations

from orchestrator.artifacts.services import find_artifact, load_document
from orchestrator.events.base import Frame
from orchestrator.tasks.models import Task, TaskState


def stored_frames(task: Task) -> list[Frame]:
    if task.transcript_artifact_id:
        artifact = find_artifact(task.transcript_artifact_id)
        if artifact is not None:
            events = load_document(artifact)["content"].get("events", [])
            return [Frame(seq, item["event"], item["data"]) for seq, item in enumerate(events)]
    full = Task.objects.filter(id=task.id).first() or task
    if full.state == TaskState.COMPLETED:
        end = {
            "tokens_out": full.tokens_out,
            "decode_ms": full.decode_ms or 0,
            "tokens_in": full.tokens_in,
            "finish_reason": full.finish_reason or "stop",
            "canceled": False,
        }
        return [Frame(0, "end", end)]
    if full.state == TaskState.CANCELED:
        end = {
            "tokens_out": full.tokens_out,
            "decode_ms": full.decode_ms or 0,
            "tokens_in": full.tokens_in,
            "finish_reason": "canceled",
            "canceled": True,
        }
        return [Frame(0, "end", end)]
    if full.error:
        return [Frame(0, "error", full.error)]
    codes = {TaskState.EXPIRED: "DEADLINE_UNMET", TaskState.DROPPED: "QUEUE_FULL_DROP_LRU"}
    if full.state in codes:
        return [
            Frame(
                0,
                "error",
                {"code": codes[TaskState(full.state)], "message": f"The task was {full.state}.", "retriable": False},
            )
        ]
    return []
