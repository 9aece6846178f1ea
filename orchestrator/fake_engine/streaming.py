"""Serving one generation: slot, pacing, SSE or one JSON body, and the injected faults.

The protocols only say what their frames look like (a `Reply`); this module
decides when they are written and how the connection misbehaves.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from aiohttp import web

from orchestrator.fake_engine.engine import Busy, FakeEngine, Plan, Run

ErrorFn = Callable[[int, str], web.Response]

# The pause between the two halves of a split write: long enough that the
# halves leave in separate TCP segments and reach the client as separate reads.
SPLIT_PAUSE_S = 0.01
# How long an aborted handler waits for aiohttp to cancel it after the transport is gone.
ABORT_GRACE_S = 5.0

DONE = "[DONE]"


class Reply(ABC):
    """The frames of one protocol for one request. Payloads are JSON-able; the string `[DONE]` is sent raw."""

    def opening(self, run: Run) -> list[Any]:
        """Frames sent just before the first token (a role delta, a BOS token)."""
        return []

    @abstractmethod
    def token(self, run: Run, index: int, piece: str) -> Any | None:
        """The frame for one token, or None to hold it back for the closing frames."""

    @abstractmethod
    def closing(self, run: Run) -> list[Any]:
        """The terminal frame(s) of a stream."""

    @abstractmethod
    def body(self, run: Run) -> Any:
        """The whole answer of a non-streaming request."""


def dump_json(payload: Any) -> bytes:
    # Real engines send UTF-8 as is, not \u escapes: adapters must decode bytes, not only ASCII.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=dump_json(payload), status=status, content_type="application/json")


def sse(payload: Any) -> bytes:
    data = payload.encode() if isinstance(payload, str) else dump_json(payload)
    return b"data: " + data + b"\n\n"


def as_int(value: Any) -> int | None:
    """An integer field of a request body; anything else (bool, float, string) counts as absent."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def read_json(request: web.Request) -> dict[str, Any] | None:
    """The request body as a JSON object, or None if it is not one."""
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def generate(
    request: web.Request, engine: FakeEngine, plan: Plan, reply: Reply, error: ErrorFn
) -> web.StreamResponse:
    """Serve one generation request end to end; every outcome is counted in `engine.stats`."""
    engine.stats.requests += 1
    if plan.fault.status is not None:
        return error(plan.fault.status, f"injected fault: status={plan.fault.status}")
    response = web.StreamResponse()
    try:
        async with engine.occupy() as run:
            if plan.stream:
                await _stream(request, response, engine, plan, reply, run)
            else:
                await _respond(request, response, engine, plan, reply, run)
    except Busy:
        return error(503, "the engine is busy: all slots are processing")
    except ConnectionError:
        pass  # counted by occupy(); aiohttp sees the closed transport and stays quiet
    return response


async def _stream(
    request: web.Request, response: web.StreamResponse, engine: FakeEngine, plan: Plan, reply: Reply, run: Run
) -> None:
    response.content_type = "text/event-stream"
    response.headers["Cache-Control"] = "no-cache"
    await response.prepare(request)
    await _misbehave(request, plan, run, final=False)
    async for index, piece in engine.tokens(plan, run):
        frames = reply.opening(run) if index == 0 else []
        frame = reply.token(run, index, piece)
        for payload in [*frames, *([] if frame is None else [frame])]:
            await _send(response, sse(payload), plan.fault.split_utf8)
        if frame is not None:
            run.sent += 1
            await _misbehave(request, plan, run, final=False)
    await _misbehave(request, plan, run, final=True)
    for payload in reply.closing(run):
        await _send(response, sse(payload), plan.fault.split_utf8)
    await response.write_eof()


async def _respond(
    request: web.Request, response: web.StreamResponse, engine: FakeEngine, plan: Plan, reply: Reply, run: Run
) -> None:
    await _misbehave(request, plan, run, final=False)
    async for _ in engine.tokens(plan, run):
        run.sent += 1
        await _misbehave(request, plan, run, final=False)
    await _misbehave(request, plan, run, final=True)
    body = dump_json(reply.body(run))
    response.content_type = "application/json"
    if not plan.fault.split_utf8:
        # Split bodies go chunked: chunk framing keeps the cut visible to the client
        # however the two writes are coalesced on the way.
        response.content_length = len(body)
    await response.prepare(request)
    await _send(response, body, plan.fault.split_utf8)
    await response.write_eof()


async def _misbehave(request: web.Request, plan: Plan, run: Run, *, final: bool) -> None:
    """Apply die_after / stall_after once `run.sent` tokens are out; `final` means "before the end frame"."""
    fault = plan.fault
    if fault.die_after is not None and (final or run.sent >= fault.die_after):
        await _abort(request, run)
    if fault.stall_after is not None and (final or run.sent >= fault.stall_after):
        # Keep the connection open, send nothing, until the client gives up (aiohttp cancels us).
        await asyncio.Event().wait()


async def _abort(request: web.Request, run: Run) -> None:
    run.aborted = True
    if request.transport is not None:
        request.transport.abort()
    # Losing the connection makes aiohttp cancel this handler; the timeout is a safety net.
    await asyncio.sleep(ABORT_GRACE_S)
    raise ConnectionResetError("connection aborted by the die_after fault")


async def _send(response: web.StreamResponse, data: bytes, split: bool) -> None:
    if not split:
        await response.write(data)
        return
    cut = _cut_point(data)
    await response.write(data[:cut])
    await asyncio.sleep(SPLIT_PAUSE_S)
    await response.write(data[cut:])


def _cut_point(data: bytes) -> int:
    """Just after the lead byte of the first multi-byte character, else mid-frame."""
    for index, byte in enumerate(data):
        if byte >= 0xC0:
            return index + 1
    return max(len(data) // 2, 1)
