"""ASGI entry point: `daphne orchestrator.asgi:application`.

Plain HTTP — REST, admin and the SSE stream — goes through Django's own ASGI
handler, which cancels a streaming response's generator as soon as the client
disconnects (the Channels AsyncHttpConsumer does not notice).

Each web process also runs the dispatcher (ARCHITECTURE.md): under daphne it
starts with the reactor, under servers that speak the ASGI lifespan protocol
(uvicorn) at startup, and in any case on the first request.
"""

import asyncio
import os
import sys
from typing import Any

import django
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
django.setup(set_prefix=False)

from asgiref.sync import ThreadSensitiveContext, sync_to_async  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402 - Django must be set up first
from django.conf import settings  # noqa: E402
from django.core import signals  # noqa: E402
from django.core.handlers.base import BaseHandler  # noqa: E402
from django.db import close_old_connections, connection, reset_queries  # noqa: E402
from django.http import HttpRequest, HttpResponseBase  # noqa: E402

from orchestrator.tasks.api.lane import PATH as LANE_PATH  # noqa: E402
from orchestrator.tasks.api.lane import AdmissionLane  # noqa: E402
from orchestrator.tasks.api.lane import applies as lane_applies  # noqa: E402
from orchestrator.tasks.dispatcher import ensure_started  # noqa: E402

Scope = dict[str, Any]

# SQLite: all sync code of the process on one thread (see Handler).
ONE_DB_THREAD = connection.vendor == "sqlite"


class Handler(ASGIHandler):
    """Django's ASGI handler, doing a request's middleware and view in one trip to a thread.

    Stock Django runs the middleware chain in async mode, and then every
    `MiddlewareMixin` method (about a dozen in our chain) is its own trip from
    the event loop to a thread and back, as is the rendering of a DRF
    response; a sync-only middleware (WhiteNoise) turns part of the chain sync
    and adds more. Here the whole chain runs sync, once per request, in one
    trip, and the response (an SSE stream included) is sent from the loop.

    With SQLite (`one_thread`), that thread is the same for every request:
    all sync code of the process runs one call at a time on one connection,
    as the dispatcher's already does. Django's default, a thread per request
    kept until the response ends, buys nothing on SQLite's single writer and
    costs a lot: the threads' connections queue on its busy handler, which
    sleeps and polls (under load writers starved past the busy timeout:
    "database is locked"), and every open SSE stream pinned an idle thread.
    On PostgreSQL, queries wait on the network, so requests keep their own threads.
    """

    def __init__(self, *, one_thread: bool) -> None:
        super().__init__()
        self.one_thread = one_thread
        self._sync = BaseHandler()
        self._sync.load_middleware(is_async=False)
        self._lane = AdmissionLane() if lane_applies() else None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if self.one_thread:
            await self.handle(scope, receive, send)
        else:
            async with ThreadSensitiveContext():
                await self.handle(scope, receive, send)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        respond = self._sync.get_response
        if self._lane is not None and request.method == "POST" and request.path == LANE_PATH:
            respond = self._admit
        response: HttpResponseBase = await sync_to_async(respond, thread_sensitive=True)(request)
        return response

    def _admit(self, request: HttpRequest) -> HttpResponseBase:
        """`POST /v2/tasks`: its common case by the lane, the rest by the full chain."""
        assert self._lane is not None  # noqa: S101 - routed here only with a lane
        return self._lane.respond(request) or self._sync.get_response(request)


def _connections_checked_after_requests() -> None:
    """On the one DB thread, look at the connection after each request, not before.

    Django's request_started receivers (`close_old_connections`,
    `reset_queries`) are sync: each request would make one more trip to the
    DB thread before its view, queued behind a burst of admissions. After the
    response is sent, Django makes that trip anyway (to close the response),
    and `close_old_connections` runs then too.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_started.disconnect(reset_queries)
    signals.request_finished.connect(reset_queries)


# On the one DB thread (SQLite), at most this many admissions wait for it at once; the rest
# wait on the event loop. A burst of admissions then no longer queues ahead of everything
# else the thread does for running tasks (clients attaching, first tokens, ends), while
# the next admission is always ready when one ends.
ADMISSIONS_AT_ONCE = 2


class AdmissionGate:
    """Lets ADMISSIONS_AT_ONCE `POST /v2/tasks` requests at a time into the app (see above).

    A request's body is received before it waits at the gate: a client
    sending its body slowly (or never finishing it) must not hold a place,
    or two such clients would stop every admission of the process. At most
    `body_limit` bytes are held here; a longer body goes to the app without
    the gate, and the app refuses it as too large.
    """

    def __init__(self, app: Any, body_limit: int | None = None) -> None:
        self.app = app
        self.body_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE if body_limit is None else body_limit
        self._gates: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("method") == "POST" and scope.get("path") == "/v2/tasks":
            received, whole = await self._receive_body(receive)
            if not whole:
                # Over the size limit: the app refuses it (413) without taking a place, whatever
                # the pace of the rest of the body.
                await self.app(scope, _replaying(received, receive), send)
                return
            async with self._gate():
                await self.app(scope, _replaying(received, receive), send)
        else:
            await self.app(scope, receive, send)

    async def _receive_body(self, receive: Any) -> tuple[list[dict[str, Any]], bool]:
        """The messages of the body, and whether that is all of it (False: over the limit)."""
        received: list[dict[str, Any]] = []
        size = 0
        while size <= (self.body_limit or 0):
            message = await receive()
            received.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                return received, True  # the whole body, or the client went away
            size += len(message.get("body", b""))
        return received, False

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(ADMISSIONS_AT_ONCE)
        return gate


def _replaying(received: list[dict[str, Any]], receive: Any) -> Any:
    """A `receive` that gives the messages already received first, then the client's."""
    pending = list(received)

    async def replay() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        message: dict[str, Any] = await receive()
        return message

    return replay


django_asgi_app: Any = Handler(one_thread=ONE_DB_THREAD)
if ONE_DB_THREAD:
    django_asgi_app = AdmissionGate(django_asgi_app)
    _connections_checked_after_requests()


class WithDispatcher:
    """Wraps the ASGI app so this process's dispatcher is always running."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        ensure_started()
        await self.app(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                ensure_started()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _start_with_daphne() -> None:
    """Daphne's reactor drives its own asyncio loop; start the dispatcher once it runs."""
    daphne_server = sys.modules.get("daphne.server")
    if daphne_server is None:
        return
    from twisted.internet import reactor

    loop: asyncio.AbstractEventLoop = daphne_server.twisted_loop
    reactor.callWhenRunning(lambda: loop.call_soon(ensure_started))


application = WithDispatcher(ProtocolTypeRouter({"http": django_asgi_app}))
_start_with_daphne()
