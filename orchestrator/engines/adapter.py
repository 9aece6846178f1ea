"""What the HTTP engine adapters share: streaming, deadlines, cancel, error mapping.

A protocol subclass only says how to ask (`generation`, `embedding`) and how
to read the answer (a `FrameReader` per generation, `vectors`). Everything
that decides an outcome lives here, the same for every engine:

| what happens                                          | code           | before_first_token |
|-------------------------------------------------------|----------------|--------------------|
| connect refused/timeout, transport error, no token yet | WORKER_RESET   | True               |
| HTTP 5xx, 429 (or any other non-2xx, non-4xx)          | WORKER_RESET   | True               |
| HTTP 4xx other than 429                               | INVALID_PARAMS | True               |
| no token within first_token_timeout_s                 | DECODE_TIMEOUT | True               |
| no token within idle_timeout_s of the previous one    | DECODE_TIMEOUT | False              |
| transport error, bad JSON, error frame, early close   | WORKER_RESET   | False once a token is out |
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable
from contextlib import AsyncExitStack, aclosing, suppress
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import aiohttp
import httpx

from orchestrator.engines.base import EngineError, EngineEvent, EngineRequest, Finished, Token, Vectors
from orchestrator.engines.http import Sending, engine_client, stream_session
from orchestrator.engines.sse import Field, SSEParser

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Health and version probes are small GETs: an engine that cannot answer them in 5 s is not healthy.
PROBE_TIMEOUT_S = 5.0
# After the final frame, how long to wait for the end of the body so the connection can be reused.
DRAIN_TIMEOUT_S = 1.0
# How long cancel() waits for the stream it interrupted to close its connection.
CANCEL_WAIT_S = 5.0
# Engine messages are quoted in errors, and error bodies can be whole HTML pages.
MESSAGE_MAX_CHARS = 300
# Engines (by URL) seen closing a kept connection under a request, as llama-server does after
# each streamed answer whichever protocol it is reached by: this process keeps none for them.
_CLOSING_ENGINES: set[str] = set()


class ProtocolError(Exception):
    """The engine's stream broke its protocol: bad JSON, an error frame, no final frame."""


class Call(NamedTuple):
    """One request to an engine: a path below its URL and a JSON body."""

    path: str
    body: dict[str, Any]


class FrameReader:
    """Turns one generation's decoded `data:` frames into events; a new one per request."""

    finished: bool = False

    def on_frame(self, frame: dict[str, Any]) -> tuple[EngineEvent, ...]:
        raise NotImplementedError

    def on_end(self) -> Finished | None:
        """The stream ended (`[DONE]` or end of body) before a final frame: the outcome, if known."""
        return None


@dataclass
class _Watch:
    """One request's deadline: the first token, then each next one."""

    request: EngineRequest
    deadline: float
    tokens: int = 0

    @property
    def first(self) -> bool:
        return self.tokens == 0

    def timed_out(self) -> EngineError:
        if self.first:
            message = f"the engine produced nothing within {self.request.first_token_timeout_s:g} s"
        else:
            message = f"the engine produced no token for {self.request.idle_timeout_s:g} s"
        return EngineError("DECODE_TIMEOUT", message, before_first_token=self.first)


class _Cancelled(Exception):
    """cancel() interrupted the stream; it ends quietly."""


class HttpAdapter(ABC):
    """One task's adapter: `stream()` once, `cancel()` from anywhere on the same loop."""

    engine: str
    health_path = "/health"
    # Whether a connection is kept for the next task after a streamed answer (see `_open`).
    keeps_connections = True

    def __init__(self, engine: str | None = None) -> None:
        if engine is not None:
            self.engine = engine
        self._cancelled = False
        self._response: aiohttp.ClientResponse | None = None
        self._timeout: asyncio.Timeout | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # -- what each protocol says ------------------------------------------------------------

    @abstractmethod
    def generation(self, request: EngineRequest) -> Call: ...

    @abstractmethod
    def reader(self, request: EngineRequest) -> FrameReader: ...

    def embedding(self, request: EngineRequest) -> Call | None:
        """The embedding request, or None when the engine serves none."""
        return None

    def vectors(self, payload: Any) -> Vectors:
        raise ProtocolError(f"{self.engine} serves no embeddings")

    @abstractmethod
    async def engine_version(self, engine_url: str) -> str: ...

    # -- the EngineAdapter contract ---------------------------------------------------------

    async def health(self, engine_url: str) -> bool:
        response = await self.probe(engine_url, self.health_path)
        return response is not None and response.status_code == 200

    async def stream(self, request: EngineRequest) -> AsyncGenerator[EngineEvent, None]:
        """Tokens then Finished (or one Vectors); after cancel() it just ends."""
        self._idle.clear()
        try:
            if request.workload == "completion":
                # aclosing: closing this generator must close the inner one (and its connection) at once.
                async with aclosing(self._relay(request)) as events:
                    async for event in events:
                        yield event
            else:
                yield await self._embed(request)
        except _Cancelled:
            return
        except EngineError as exc:
            logger.info(
                "engine request failed",
                extra={"task_id": request.task_id, "engine": self.engine, "code": exc.code, "status": exc.status},
            )
            raise
        finally:
            self._response = None
            self._idle.set()

    async def cancel(self) -> None:
        self._cancelled = True
        if self._timeout is not None:
            # The stream is waiting on the engine: expire its wait now (unless its own deadline
            # just did); seeing the flag, it closes the connection and ends.
            if not self._timeout.expired():
                self._timeout.reschedule(asyncio.get_running_loop().time())
            with suppress(TimeoutError):
                async with asyncio.timeout(CANCEL_WAIT_S):
                    await self._idle.wait()
        elif self._response is not None:
            # The stream is parked at a yield: close the connection under it.
            self._response.close()

    # -- the mechanics ----------------------------------------------------------------------

    async def _relay(self, request: EngineRequest) -> AsyncGenerator[EngineEvent]:
        loop = asyncio.get_running_loop()
        watch = _Watch(request, loop.time() + request.first_token_timeout_s)
        reader = self.reader(request)
        async with AsyncExitStack() as stack:
            response = await self._open(stack, request, self.generation(request), watch)
            body = response.content
            parser = SSEParser()
            while not reader.finished:
                chunk = await self._wait(_read_some(body), watch)
                fields = parser.feed(chunk) if chunk else parser.close()
                for field in fields:
                    for event in self._events(field, reader, watch.first):
                        yield event
                        if self._cancelled:
                            return
                        if type(event) is Token:
                            watch.tokens += 1
                            watch.deadline = loop.time() + request.idle_timeout_s
                    if reader.finished:
                        break
                if not chunk and not reader.finished:
                    yield self._end(reader, watch.first)
            await self._drain(body, request)

    async def _embed(self, request: EngineRequest) -> Vectors:
        # Rerank needs a query, which EngineRequest does not carry yet: no adapter serves it.
        call = self.embedding(request) if request.workload == "embedding" else None
        if call is None:
            raise EngineError("INVALID_PARAMS", f"{self.engine} serves no {request.workload}", before_first_token=True)
        watch = _Watch(request, asyncio.get_running_loop().time() + request.first_token_timeout_s)
        async with AsyncExitStack() as stack:
            response = await self._open(stack, request, call, watch)
            raw = await self._wait(response.read(), watch)
        try:
            return self.vectors(json.loads(raw))
        except (ValueError, ProtocolError) as exc:
            raise EngineError("WORKER_RESET", f"bad embedding answer: {exc}", before_first_token=True) from None

    async def _open(
        self, stack: AsyncExitStack, request: EngineRequest, call: Call, watch: _Watch
    ) -> aiohttp.ClientResponse:
        if self._cancelled:
            raise _Cancelled  # before the request exists: nothing is sent
        url = request.engine_url.rstrip("/") + call.path
        keep = self.keeps_connections and request.engine_url not in _CLOSING_ENGINES
        sending = Sending()
        try:
            opening = stream_session(keep_alive=keep).post(url, json=call.body, trace_request_ctx=sending)
            response = await self._wait(stack.enter_async_context(opening), watch)
        except EngineError as exc:
            if not (sending.reused and _stale(exc)):
                raise  # a new connection that failed: the engine's own doing, not sent again
            # A kept connection the engine closed as the request went out on it: the request
            # got no answer. Once more, on a connection of its own (the pool may hold more such),
            # and none kept for this engine from now on.
            _CLOSING_ENGINES.add(request.engine_url)
            extra = {"task_id": request.task_id, "engine": self.engine, "error": str(exc)}
            logger.info("engine.connection_stale", extra=extra)
            opening = stream_session(keep_alive=False).post(url, json=call.body)
            response = await self._wait(stack.enter_async_context(opening), watch)
        self._response = response
        if not 200 <= response.status < 300:
            raise status_error(response.status, await self._wait(response.read(), watch))
        return response

    async def _wait(self, awaitable: Awaitable[T], watch: _Watch) -> T:
        """Await engine I/O until the watch's deadline; cancel() can cut it short."""
        if self._cancelled:
            if inspect.iscoroutine(awaitable):
                awaitable.close()  # never started: nothing was sent
            raise _Cancelled
        try:
            async with asyncio.timeout_at(watch.deadline) as timeout:
                self._timeout = timeout
                return await awaitable
        except aiohttp.ClientError as exc:  # before TimeoutError: aiohttp's connect timeout is both
            if self._cancelled:
                raise _Cancelled from None
            message = f"lost the engine connection: {type(exc).__name__}: {exc}"
            raise EngineError("WORKER_RESET", message, before_first_token=watch.first) from exc
        except TimeoutError:
            if self._cancelled:
                raise _Cancelled from None
            raise watch.timed_out() from None
        finally:
            self._timeout = None

    def _events(self, field: Field, reader: FrameReader, first: bool) -> tuple[EngineEvent, ...]:
        try:
            if field.is_done:
                return (self._end(reader, first),)
            if field.name == "data":
                return reader.on_frame(json_object(field.value))
            if field.name == "error":  # older llama-server: `error: {...}` lines
                raise ProtocolError(f"the engine reported an error: {field.value[:MESSAGE_MAX_CHARS]}")
        except ProtocolError as exc:
            raise EngineError("WORKER_RESET", str(exc), before_first_token=first) from None
        return ()

    def _end(self, reader: FrameReader, first: bool) -> Finished:
        try:
            finished = reader.on_end()
        except ProtocolError as exc:
            raise EngineError("WORKER_RESET", str(exc), before_first_token=first) from None
        if finished is None:
            message = "the engine closed the stream without its final frame"
            raise EngineError("WORKER_RESET", message, before_first_token=first)
        reader.finished = True
        return finished

    async def _drain(self, body: aiohttp.StreamReader, request: EngineRequest) -> None:
        """Read to the end of the body, so that the connection goes back to the pool."""
        deadline = asyncio.get_running_loop().time() + DRAIN_TIMEOUT_S
        # On failure the answer is still complete; the connection is just not reused.
        with suppress(EngineError, _Cancelled):
            await self._wait(_exhaust(body), _Watch(request, deadline, tokens=1))

    async def probe(self, engine_url: str, path: str) -> httpx.Response | None:
        """A small GET; None if the engine cannot be reached."""
        try:
            return await engine_client().get(engine_url.rstrip("/") + path, timeout=PROBE_TIMEOUT_S)
        except httpx.HTTPError:
            return None

    async def probe_json(self, engine_url: str, path: str) -> Any:
        """The JSON answer of a GET that succeeded, else None."""
        response = await self.probe(engine_url, path)
        if response is None or not response.is_success:
            return None
        try:
            return response.json()
        except ValueError:
            return None


def _stale(error: EngineError) -> bool:
    """Whether the request, sent on a kept connection, failed as on one the engine had closed.

    aiohttp raises `ServerDisconnectedError` when the connection closes before the answer's
    headers, and `ClientOSError` when the request cannot be written to it; a connection that
    could not be made at all (`ClientConnectorError`, also an OSError) is not stale.
    """
    cause = error.__cause__
    return isinstance(cause, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError) and not isinstance(
        cause, aiohttp.ClientConnectorError
    )


async def _read_some(body: aiohttp.StreamReader) -> bytes:
    """Whatever has arrived, at once (b"" at the end of the body).

    When the connection breaks, aiohttp's `readany` raises at once, even with
    bytes of the body still in its buffer: the last tokens the engine sent
    before it died would be lost. Those bytes are handed over first; the
    error comes with the next read, once the buffer is empty.
    """
    try:
        return await body.readany()
    except aiohttp.ClientError:
        arrived = body._read_nowait(-1)  # noqa: SLF001 - aiohttp offers no public way (pinned version)
        if arrived:
            return arrived
        raise


async def _exhaust(body: aiohttp.StreamReader) -> None:
    while await body.readany():
        pass


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise ProtocolError(f"the engine sent invalid JSON: {text[:MESSAGE_MAX_CHARS]!r}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"the engine sent a frame that is not an object: {text[:MESSAGE_MAX_CHARS]!r}")
    return value


def status_error(status: int, body: bytes) -> EngineError:
    """429 and 5xx: the engine is overloaded or broken, try elsewhere; other 4xx: our request is wrong."""
    code = "INVALID_PARAMS" if 400 <= status < 500 and status != 429 else "WORKER_RESET"
    message = f"the engine answered HTTP {status}: {engine_message(body)}"
    return EngineError(code, message, before_first_token=True, status=status)


def engine_message(body: bytes) -> str:
    """The human part of an engine's error body (llama.cpp, OpenAI, TGI and FastAPI shapes)."""
    text = body.decode("utf-8", errors="replace")
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:MESSAGE_MAX_CHARS] or "(no message)"
    return error_text(payload)[:MESSAGE_MAX_CHARS]


def error_text(payload: Any) -> str:
    """`{"error": "..."}`, `{"error": {"message": ...}}`, `{"message": ...}` or `{"detail": ...}`."""
    if isinstance(payload, dict):
        for key in ("error", "message", "detail"):
            if key in payload:
                return error_text(payload[key])
    return payload if isinstance(payload, str) else json.dumps(payload)


def float_list(value: Any) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ProtocolError("an embedding is not a list of numbers")
    return [float(v) for v in value]


def optional_int(*values: Any) -> int | None:
    """The first value that is an integer (engines report counts as ints, sometimes as floats)."""
    for value in values:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return round(value)
    return None
