"""The contract every engine adapter implements (SPEC §11).

An adapter turns one inference task into one HTTP request to an engine and
its streamed answer into `EngineEvent`s. It never touches the database or
the event log: the dispatcher drives it and records what it yields.

Errors are raised as `EngineError` carrying the SPEC code to report and
whether a token had been produced yet, which decides between retrying the
task on another pool (before the first token) and ending its stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class EngineRequest:
    """What an adapter needs to run one task."""

    task_id: str
    engine_url: str
    workload: str  # completion | embedding | rerank
    model_ref: str
    max_tokens: int
    prompt: str = ""
    inputs: tuple[str, ...] = ()
    seed: int | None = None
    temperature: float | None = None
    first_token_timeout_s: float = 120.0
    idle_timeout_s: float = 30.0


@dataclass(frozen=True)
class Token:
    """A text delta (never empty)."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The engine's end of stream, with what it reports of the work done."""

    finish_reason: str  # stop | length
    tokens_out: int | None = None
    tokens_in: int | None = None
    decode_ms: int | None = None


@dataclass(frozen=True)
class Vectors:
    """The result of an embedding (or rerank) task."""

    embeddings: list[list[float]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    tokens_in: int | None = None


EngineEvent = Token | Finished | Vectors


class EngineError(Exception):
    """The engine failed; `code` is the SPEC error code to report.

    `before_first_token` is True when nothing was produced yet (connection
    refused, 5xx, timeout waiting for the first token): the dispatcher may
    then place the task on another pool.
    """

    def __init__(self, code: str, message: str, *, before_first_token: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.before_first_token = before_first_token
        self.status = status


class EngineAdapter(Protocol):
    engine: str

    async def health(self, engine_url: str) -> bool: ...

    async def engine_version(self, engine_url: str) -> str: ...

    def stream(self, request: EngineRequest) -> AsyncGenerator[EngineEvent, None]:
        """Run the request; closing the iterator (aclose) closes the engine connection."""
        ...

    async def cancel(self) -> None:
        """Close the engine stream of the request in flight, freeing the engine's slot."""
        ...
