"""Engine answers as bytes, a mocked response body that can stall or break, and a stream collector."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx

from orchestrator.engines import adapter_for
from orchestrator.engines.base import EngineError, EngineEvent, EngineRequest, Finished, Token

URL = "http://engine.test:8080"

# The engine name each protocol is reached under in these tests.
ENGINES = {"llamacpp": "llamacpp", "openai": "vllm", "tgi": "tgi"}
GENERATE_PATHS = {"llamacpp": "/completion", "openai": "/v1/completions", "tgi": "/generate_stream"}


def sse(*payloads: Any) -> bytes:
    """`data:` events; strings are sent raw (`[DONE]`, broken JSON), anything else as UTF-8 JSON."""
    out = b""
    for payload in payloads:
        data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        out += b"data: " + data.encode() + b"\n\n"
    return out


def token_frame(protocol: str, text: str) -> dict[str, Any]:
    if protocol == "llamacpp":
        return {"content": text, "stop": False, "tokens_predicted": 1}
    if protocol == "openai":
        return {"object": "text_completion", "choices": [{"index": 0, "text": text, "finish_reason": None}]}
    return {"token": {"id": 7, "text": text, "special": False}, "generated_text": None, "details": None}


def final_frames(protocol: str, texts: Sequence[str]) -> list[Any]:
    """The frames that end a `length` generation of `texts` after a prompt of 4 tokens."""
    if protocol == "llamacpp":
        timings = {"prompt_n": 4, "predicted_n": len(texts), "predicted_ms": 41.6}
        return [{"content": "", "stop": True, "stop_type": "limit", "tokens_predicted": len(texts), "timings": timings}]
    if protocol == "openai":
        usage = {"prompt_tokens": 4, "completion_tokens": len(texts), "total_tokens": 4 + len(texts)}
        finish = {"choices": [{"index": 0, "text": "", "finish_reason": "length"}], "usage": None}
        return [finish, {"choices": [], "usage": usage}, "[DONE]"]
    details = {"finish_reason": "length", "generated_tokens": len(texts), "seed": None, "input_length": 4}
    return [{"token": {"id": 9, "text": "", "special": False}, "generated_text": "".join(texts), "details": details}]


def generation(protocol: str, texts: Sequence[str], *, final: bool = True) -> bytes:
    """A whole streamed answer: one frame per token text, then (unless told not to) the end."""
    frames: list[Any] = [token_frame(protocol, text) for text in texts]
    return sse(*frames, *(final_frames(protocol, texts) if final else []))


@dataclass
class Body(httpx.AsyncByteStream):
    """A response body sent as `chunks`, then optionally a pause (`stall_s`) or an error (`fail`).

    A float among the chunks is a pause of that many seconds.
    """

    chunks: Sequence[bytes | float]
    stall_s: float = 0.0
    fail: Exception | None = None
    closed: bool = field(default=False, init=False)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            if isinstance(chunk, float):
                await asyncio.sleep(chunk)
            else:
                yield chunk
        if self.stall_s:
            await asyncio.sleep(self.stall_s)
        if self.fail is not None:
            raise self.fail

    async def aclose(self) -> None:
        self.closed = True


def mock_generation(mock: respx.MockRouter, protocol: str, body: Body, status: int = 200) -> respx.Route:
    headers = {"content-type": "text/event-stream"}
    return mock.post(URL + GENERATE_PATHS[protocol]).mock(
        return_value=httpx.Response(status, headers=headers, stream=body)
    )


def request(workload: str = "completion", **fields: Any) -> EngineRequest:
    defaults: dict[str, Any] = {"task_id": "task-1", "engine_url": URL, "model_ref": "m", "max_tokens": 8}
    return EngineRequest(workload=workload, **{**defaults, **fields})


@dataclass
class Outcome:
    events: list[EngineEvent]
    error: EngineError | None

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, Token))

    @property
    def tokens(self) -> list[str]:
        return [e.text for e in self.events if isinstance(e, Token)]

    @property
    def finished(self) -> Finished | None:
        last = self.events[-1] if self.events else None
        return last if isinstance(last, Finished) else None


async def collect(protocol: str, req: EngineRequest | None = None, **fields: Any) -> Outcome:
    """Every event of one stream, and the error that ended it, if any."""
    events: list[EngineEvent] = []
    try:
        async for event in adapter_for(ENGINES[protocol]).stream(req or request(**fields)):
            events.append(event)
    except EngineError as exc:
        return Outcome(events, exc)
    return Outcome(events, None)
