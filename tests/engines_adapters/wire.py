"""Engine answers as bytes, a local engine server that plays them, and a stream collector.

Generations and embeddings go through aiohttp (orchestrator.engines.http), which
respx does not mock, so they are served by `WireEngine`: a real aiohttp server on
loopback, in the test's event loop, that answers each route with a `Body` —
chunks written one by one (a short pause apart, so each arrives as its own
read), then optionally a stall or a cut connection. Its routes record what was
sent, in the shape of respx's (`route.called`, `route.calls.last.request.content`),
so tests read the same. Probes (health, version) still use httpx and respx, at `URL`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from orchestrator.engines import adapter_for
from orchestrator.engines.base import EngineError, EngineEvent, EngineRequest, Finished, Token

URL = "http://engine.test:8080"

# The engine name each protocol is reached under in these tests.
ENGINES = {"llamacpp": "llamacpp", "openai": "vllm", "tgi": "tgi"}
GENERATE_PATHS = {"llamacpp": "/completion", "openai": "/v1/completions", "tgi": "/generate_stream"}

# Between two chunks of a body: long enough for the client to read the first on
# its own (both ends share the test's event loop), so cut lines stay cut.
CHUNK_PAUSE_S = 0.001


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
class Body:
    """A response body sent as `chunks`, then optionally a pause (`stall_s`) or a cut connection (`fail`).

    A float among the chunks is a pause of that many seconds. `closed` turns true
    when the client goes away before the body is over.
    """

    chunks: Sequence[bytes | float]
    stall_s: float = 0.0
    fail: bool = False
    _closed: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self, timeout_s: float = 2.0) -> bool:
        """Whether the client closed the connection within `timeout_s` (the server sees it a moment later)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._closed.wait()
        return self.closed


@dataclass
class Sent:
    content: bytes


@dataclass
class Call:
    request: Sent


class Calls(list[Call]):
    @property
    def last(self) -> Call:
        return self[-1]


@dataclass
class Route:
    """One method and path of the engine: what it answers, and what it was sent."""

    body: Body = field(default_factory=lambda: Body([]))
    status: int = 200
    content_type: str = "text/event-stream"
    hanging: bool = False
    resetting: bool = False
    one_per_connection: bool = False
    calls: Calls = field(default_factory=Calls)
    connections: list[object] = field(default_factory=list)  # each request's connection (its transport)
    _received: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def called(self) -> bool:
        return bool(self.calls)

    async def wait_called(self) -> None:
        await self._received.wait()

    def respond(self, status: int = 200, *, json: Any = None, body: Body | None = None) -> Route:
        self.status = status
        if json is not None:
            self.body, self.content_type = Body([_dumps(json)]), "application/json"
        elif body is not None:
            self.body = body
        return self

    def hang(self) -> Route:
        """Never answer: the request waits for response headers that do not come."""
        self.hanging = True
        return self

    def reset(self) -> Route:
        """Drop the connection once the request is in, before any answer."""
        self.resetting = True
        return self

    def once_per_connection(self) -> Route:
        """Answer a connection's first request; drop the connection when another comes on it.

        As an engine that closes a kept-alive connection just as the client sends on it.
        """
        self.one_per_connection = True
        return self


class WireEngine:
    """A local HTTP server standing in for an engine; routes are set per test."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.url = ""

    def post(self, path: str) -> Route:
        return self.routes.setdefault(("POST", path), Route())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        route = self.routes.get((request.method, request.path))
        if route is None:
            return web.Response(status=404, text=f"no route {request.method} {request.path}")
        route.calls.append(Call(Sent(await request.read())))
        route._received.set()
        body = route.body
        reused = request.transport in route.connections
        route.connections.append(request.transport)
        if (route.resetting or (route.one_per_connection and reused)) and request.transport is not None:
            request.transport.abort()
            return web.Response()
        try:
            if route.hanging:
                await asyncio.sleep(3600)
            response = web.StreamResponse(status=route.status, headers={"Content-Type": route.content_type})
            await response.prepare(request)
            for chunk in body.chunks:
                if isinstance(chunk, float):
                    await asyncio.sleep(chunk)
                else:
                    await response.write(chunk)
                    await asyncio.sleep(CHUNK_PAUSE_S)
            if body.stall_s:
                await asyncio.sleep(body.stall_s)
            if body.fail and request.transport is not None:
                request.transport.abort()  # the connection drops mid-body
                return response
            await response.write_eof()
        except (asyncio.CancelledError, ConnectionError):
            body._closed.set()
            raise
        return response

    @asynccontextmanager
    async def running(self) -> AsyncIterator[WireEngine]:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        # handler_cancellation: a client that goes away cancels the handler, which marks its body closed.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            await runner.cleanup()


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload).encode()


# The engine of the running test, which `request()` points at by default.
_current: list[WireEngine] = []


def mock_generation(engine: WireEngine, protocol: str, body: Body, status: int = 200) -> Route:
    return engine.post(GENERATE_PATHS[protocol]).respond(status, body=body)


def request(workload: str = "completion", **fields: Any) -> EngineRequest:
    url = _current[-1].url if _current else URL
    defaults: dict[str, Any] = {"task_id": "task-1", "engine_url": url, "model_ref": "m", "max_tokens": 8}
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
