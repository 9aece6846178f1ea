"""The load generator's clients: one streamed generation per call, timed at the client.

Every arm is timed the same way: from just before the request is sent to the
arrival of the first *content* token (not the response headers), and each
token's arrival time is kept for throughput and gap statistics. aiohttp is
used on the client side because its C HTTP parser leaves more of the
machine's two cores to the processes being measured.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

PROMPT = "Write a short story about a server that relays tokens."


class Live:
    """How many streams of an arm are between their first token and their end."""

    def __init__(self) -> None:
        self.count = 0


@dataclass
class Stream:
    """What one client saw of one generation."""

    started: float
    live: Live | None = None
    ttft_ms: float | None = None
    token_times: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def tokens(self) -> int:
        return len(self.token_times)

    def gaps_ms(self) -> list[float]:
        times = self.token_times
        return [(b - a) * 1000 for a, b in zip(times, times[1:], strict=False)]

    def token(self, now: float) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (now - self.started) * 1000
            if self.live is not None:
                self.live.count += 1
        self.token_times.append(now)

    def done(self) -> None:
        if self.ttft_ms is not None and self.live is not None:
            self.live.count -= 1
            self.live = None


class Arm(Protocol):
    name: str
    live: Live

    async def run(self, session: aiohttp.ClientSession, max_tokens: int, index: int = 0) -> Stream: ...


def _openai_token(payload: bytes) -> bool:
    if payload.strip() == b"[DONE]":
        return False
    choices = json.loads(payload).get("choices") or []
    return bool(choices and choices[0].get("text"))


def _llamacpp_token(payload: bytes) -> bool:
    return bool(json.loads(payload).get("content"))


async def _read_sse(
    stream: Stream,
    session: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str] | None,
    is_token: Callable[[bytes], bool],
) -> None:
    """POST a streamed generation and time each `data:` line that carries content."""
    async with session.post(url, json=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.content:
            if line.startswith(b"data:") and is_token(line[5:]):
                stream.token(time.perf_counter())


class _Arm:
    live: Live

    async def run(self, session: aiohttp.ClientSession, max_tokens: int, index: int = 0) -> Stream:
        stream = Stream(time.perf_counter(), self.live)
        try:
            await self._read(stream, session, max_tokens, index)
        finally:
            stream.done()
        return stream

    async def _read(self, stream: Stream, session: aiohttp.ClientSession, max_tokens: int, index: int) -> None:
        raise NotImplementedError


@dataclass
class Direct(_Arm):
    """The engine itself: llama.cpp's `/completion` or an OpenAI `/v1/completions`."""

    url: str
    protocol: str = "openai"
    model: str = "bench-model"
    name: str = "direct"
    live: Live = field(default_factory=Live)
    llama_server: bool = False  # llama-server behind the OpenAI protocol (its `/v1/completions`)

    async def _read(self, stream: Stream, session: aiohttp.ClientSession, max_tokens: int, index: int) -> None:
        if self.protocol == "llamacpp":
            path, is_token = "/completion", _llamacpp_token
            body: dict[str, Any] = {"prompt": PROMPT, "n_predict": max_tokens, "stream": True, "cache_prompt": True}
        else:
            path, is_token = "/v1/completions", _openai_token
            body = {"model": self.model, "prompt": PROMPT, "max_tokens": max_tokens, "stream": True}
        # llama-server (cpp-httplib) closes a keep-alive connection after a few requests, and a
        # reused socket it just closed fails the request: give it a fresh connection each time,
        # on either of its endpoints.
        headers = {"Connection": "close"} if self.protocol == "llamacpp" or self.llama_server else None
        await _read_sse(stream, session, self.url + path, body, headers, is_token)


@dataclass
class LiteLLM(_Arm):
    """The LiteLLM proxy's `/v1/completions`, in front of the same engine."""

    url: str
    key: str
    model: str = "bench-model"
    name: str = "litellm"
    live: Live = field(default_factory=Live)

    async def _read(self, stream: Stream, session: aiohttp.ClientSession, max_tokens: int, index: int) -> None:
        body = {"model": self.model, "prompt": PROMPT, "max_tokens": max_tokens, "stream": True}
        headers = {"Authorization": f"Bearer {self.key}"}
        await _read_sse(stream, session, self.url + "/v1/completions", body, headers, _openai_token)


@dataclass
class Orchd(_Arm):
    """orchestratord: POST /v2/tasks, then the task's SSE stream."""

    url: str
    token: str
    engine: str = "openai"
    model: str = "bench-model"
    name: str = "orchestratord"
    live: Live = field(default_factory=Live)

    def task(self, max_tokens: int, index: int) -> dict[str, Any]:
        return {
            "task_id": uuid.uuid4().hex,
            "session_id": f"bench-{index}",
            "workload": "completion",
            "model_ref": self.model,
            "engine": self.engine,
            "ctx": 512,
            "priority": "interactive",
            "max_tokens": max_tokens,
            "deadline_ms": 600_000,
            "prompt": PROMPT,
        }

    async def admit(self, session: aiohttp.ClientSession, max_tokens: int, index: int = 0) -> str:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with session.post(self.url + "/v2/tasks", json=self.task(max_tokens, index), headers=headers) as answer:
            if answer.status != 202:
                raise RuntimeError(f"admission answered {answer.status}: {await answer.text()}")
            return str((await answer.json())["streams"]["sse"])

    async def _read(self, stream: Stream, session: aiohttp.ClientSession, max_tokens: int, index: int) -> None:
        events = await self.admit(session, max_tokens, index)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with session.get(self.url + events, headers=headers) as response:
            response.raise_for_status()
            async for line in response.content:
                if line.startswith(b"event: "):
                    event = line[7:].strip()
                    if event == b"token":
                        stream.token(time.perf_counter())
                    elif event == b"end":
                        return
                    elif event == b"error":
                        stream.error = "error frame"
                elif stream.error == "error frame" and line.startswith(b"data:"):
                    stream.error = line[5:].decode().strip()[:200]
                    return


def new_session(limit: int = 0) -> aiohttp.ClientSession:
    """A client session without a connection cap (limit=0) and without timeouts."""
    connector = aiohttp.TCPConnector(limit=limit, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
