"""Transcripts: every task that started streaming leaves one artifact (SPEC §3.7)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings

from orchestrator.artifacts.services import store_artifact
from orchestrator.tasks.claims import Claim

if TYPE_CHECKING:
    from orchestrator.tasks.runner import Outcome

logger = logging.getLogger("orchestrator.tasks")


def store_transcript(claim: Claim, outcome: Outcome, final: str, frames: list[tuple[str, dict[str, Any]]]) -> str:
    """Store the run's transcript; its artifact id (the caller records it on the task, with the end)."""
    content: dict[str, Any] = {"events": [{"event": event, "data": data} for event, data in frames]}
    if settings.ORCHD_STORE_PROMPTS:
        content["prompt"] = claim.prompt
        content["inputs"] = list(claim.inputs)
    stored = store_artifact(
        "transcript",
        content,
        tags=["sse", f"task:{claim.task_id}", f"session:{claim.session_id}"],
        metadata={
            "engine": claim.engine,
            "engine_version": claim.engine_version,
            "pool_id": claim.pool_id,
            "node_id": claim.node_id,
            "model_ref": claim.model_ref,
            "tokens_out": outcome.tokens_out,
            "decode_ms": outcome.decode_ms,
            "outcome": final,
        },
    )
    return stored.artifact.id
