"""ASGI entry point: `daphne orchestrator.asgi:application`.

Plain HTTP — REST, admin and the SSE stream — goes through Django's own ASGI
handler, which cancels a streaming response's generator as soon as the client
disconnects (the Channels AsyncHttpConsumer does not notice).

Each web process also runs the dispatcher (ARCHITECTURE.md): under daphne it
starts with the reactor, under servers that speak the ASGI lifespan protocol
(uvicorn) at startup, and in any case on the first request.
"""

import asyncio
import contextvars
import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import django
from django.core.handlers.asgi import ASGIHandler, get_script_prefix

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
django.setup(set_prefix=False)

from asgiref.sync import ThreadSensitiveContext, sync_to_async  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402 - Django must be set up first
from django.core import signals  # noqa: E402
from django.core.exceptions import RequestAborted  # noqa: E402
from django.core.handlers.base import BaseHandler  # noqa: E402
from django.core.handlers.exception import response_for_exception  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpRequest, HttpResponseBase  # noqa: E402
from django.urls import set_script_prefix  # noqa: E402

from orchestrator import heap, metrics, servers  # noqa: E402
from orchestrator.api.errors import error_response, internal_error  # noqa: E402
from orchestrator.tasks.api.lane import PATH as LANE_PATH  # noqa: E402
from orchestrator.tasks.api.lane import AdmissionLane  # noqa: E402
from orchestrator.tasks.api.lane import applies as lane_applies  # noqa: E402
from orchestrator.tasks.dispatcher import ensure_started  # noqa: E402

Scope = dict[str, Any]

logger = logging.getLogger("orchestrator.asgi")

# SQLite: all sync code of the process on one thread (see Handler).
ONE_DB_THREAD = connection.vendor == "sqlite"


# On the one DB thread (SQLite), the admissions waiting for it are answered together, at most
# this many in one trip, one trip at a time; the next waits on the event loop. A burst of
# admissions then no longer queues ahead of everything else the thread does for running tasks
# (clients attaching, first tokens, ends), which runs between two trips, while the trip and its
# answers cost one hop between the loop and the thread for the lot (docs/performance.md, step 15).
ADMISSIONS_PER_TRIP = 8


class TripFailed(Exception):
    """The trip that carried a request failed as a whole (not the request's own answer)."""


# A request waiting for a trip, the context it arrived in, and where its answer goes.
Waiting = tuple[HttpRequest, contextvars.Context, "asyncio.Future[HttpResponseBase]"]


class AdmissionTrips:
    """`POST /v2/tasks` requests, answered on the DB thread by `answer`, several in one trip.

    A request joins only once its whole body is in (the handler reads it first): a client
    sending its body slowly holds no place. Requests arriving while a trip is out wait for
    the next one, which takes at most `per_trip` of them, oldest first. Each request gets its
    own answer, made in the request's own context (its context variables, as its handler
    saw them): one that fails is answered as the chain answers an unhandled error, and the
    others as if it had not been there. Each answer is closed in its trip (`request_finished`,
    and the request's body), before it is sent; a request whose handler was cancelled while
    it waited (the server shutting down, or giving up on it) is dropped unanswered.
    """

    def __init__(
        self,
        answer: Callable[[HttpRequest], HttpResponseBase],
        per_trip: int = ADMISSIONS_PER_TRIP,
        handler_class: type[Any] | None = None,
    ) -> None:
        self.answer = answer
        self.per_trip = per_trip
        self.handler_class = handler_class  # the `request_finished` signal's sender, as Django sends it
        self._waiting: dict[asyncio.AbstractEventLoop, list[Waiting]] = {}
        self._trips: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self.trips_made = 0

    async def response(self, request: HttpRequest) -> HttpResponseBase:
        """The request's answer, closed. Once this is called, the trips own the request (and close it)."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[HttpResponseBase] = loop.create_future()
        self._waiting.setdefault(loop, []).append((request, contextvars.copy_context(), answered))
        trips = self._trips.get(loop)
        if trips is None or trips.done():
            # In a context of its own: it serves every request that comes while it runs.
            trips = self._trips[loop] = loop.create_task(self._make_trips(loop), context=contextvars.Context())
            trips.add_done_callback(functools.partial(self._forget, loop))
        return await answered

    async def _make_trips(self, loop: asyncio.AbstractEventLoop) -> None:
        while waiting := self._waiting.get(loop):
            taken = waiting[: self.per_trip]
            del waiting[: self.per_trip]
            trip = []
            for request, context, answered in taken:
                if answered.done():  # its handler was cancelled while it waited: nobody reads an answer
                    _close_quietly(request)
                else:
                    trip.append((request, context, answered))
            if trip:
                await self._make_trip(trip)

    def _forget(self, loop: asyncio.AbstractEventLoop, trips: asyncio.Task[None]) -> None:
        """When a task making trips ends: cancelled (the loop shutting down), what waits ends with it."""
        if self._trips.get(loop) is not trips:
            return  # a newer one took over
        del self._trips[loop]
        for request, _, answered in self._waiting.pop(loop, []):
            answered.cancel()
            _close_quietly(request)

    async def _make_trip(self, trip: list[Waiting]) -> None:
        try:
            pairs = [(request, context) for request, context, _ in trip]
            responses = await sync_to_async(self._answer_all, thread_sensitive=True)(pairs)
        except Exception as exc:  # noqa: BLE001 - not a request's failure (each is answered): the trip's
            for request, _, answered in trip:
                _close_quietly(request)
                if not answered.done():
                    failed = TripFailed("the admission trip failed")
                    failed.__cause__ = exc
                    answered.set_exception(failed)
            return
        except BaseException:
            for _, _, answered in trip:
                answered.cancel()
            raise
        for (_, _, answered), response in zip(trip, responses, strict=True):
            if not answered.done():  # its handler was cancelled (shutdown)
                answered.set_result(response)

    def _answer_all(self, pairs: list[tuple[HttpRequest, contextvars.Context]]) -> list[HttpResponseBase]:
        self.trips_made += 1
        metrics.orchd_admission_trip_size.observe(len(pairs))
        return [context.run(self._answer_one, request) for request, context in pairs]

    def _answer_one(self, request: HttpRequest) -> HttpResponseBase:
        """The request's answer, closed; never raises (the trip's other answers depend on it)."""
        # Django keeps the script prefix in an asgiref Local, which the handler set on the
        # loop's thread: a context switched to here does not carry it (sync_to_async would).
        set_script_prefix(request.META.get("SCRIPT_NAME") or "/")
        try:
            response = self.answer(request)
        except Exception as exc:  # noqa: BLE001 - this request's failure, not its trip's
            response = self._error(request, exc)
        if self.handler_class is not None:
            response._handler_class = self.handler_class  # type: ignore[attr-defined]  # as Django's handler sets it
        if not response.streaming:
            # Closed here, in its trip, before it is sent (Django's handler makes one more trip
            # to close it after): its body is rendered, and `request_finished` (connection
            # checks, statement metrics) runs on the thread that served it. The answer stands
            # whatever a receiver of the signal does: the task may be admitted already.
            try:
                response.close()
            except Exception:
                logger.exception("admission.close_failed")
            _close_quietly(request)  # an error's answer does not close its request (the chain's does)
        return response

    def _error(self, request: HttpRequest, exc: Exception) -> HttpResponseBase:
        try:
            return response_for_exception(request, exc)
        except Exception:  # a failing error handler (or DEBUG_PROPAGATE_EXCEPTIONS): still an envelope
            logger.exception("admission.error_handler_failed")
            return error_response(internal_error())


def _close_quietly(request: HttpRequest) -> None:
    """Close a request (its body); a failure is logged, never raised into the trips."""
    try:
        request.close()
    except Exception:
        logger.exception("admission.request_close_failed")


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
        self.admissions = AdmissionTrips(self._admit, handler_class=type(self)) if one_thread else None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if self.one_thread:
            await self.handle(scope, receive, send)
        else:
            async with ThreadSensitiveContext():
                await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Any, send: Any) -> None:
        if self.admissions is None or scope.get("method") != "POST" or scope.get("path") != LANE_PATH:
            await super().handle(scope, receive, send)
            return
        await self._handle_admission(self.admissions, scope, receive, send)

    async def _handle_admission(self, admissions: AdmissionTrips, scope: Scope, receive: Any, send: Any) -> None:
        """As Django's `handle`, with the answer (and its close) from a trip of `admissions`.

        Django's handler also listens for the client's disconnect while the view runs, to
        cancel it: an admission is not cancelled (on the DB thread it could not be, and a
        task admitted is persisted whether or not its client stayed to read the answer).
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            set_script_prefix(get_script_prefix(scope))
            await signals.request_started.asend(sender=self.__class__, scope=scope)
            request, refusal = self.create_request(scope, body_file)
        except BaseException:
            body_file.close()
            raise
        if request is None:
            body_file.close()
            assert refusal is not None  # noqa: S101 - Django's create_request gives one or the other
            await self._send_and_close(refusal, send)
            return
        # From here on the trips own the request and its body: they close it with its answer,
        # or when they drop it, even if this handler is cancelled while it waits.
        try:
            response = await admissions.response(request)
        except TripFailed:  # not the request's answer, which would be an envelope already
            logger.exception("admission.trip_failed")
            await self._send_and_close(error_response(internal_error()), send)
            return
        if response.streaming:  # never from the lane; the chain's could be
            await self._send_and_close(response, send)
        else:
            await self.send_response(response, send)  # closed in its trip

    async def _send_and_close(self, response: HttpResponseBase, send: Any) -> None:
        """As Django's handler answers what it made itself: send, then close on a thread."""
        try:
            await self.send_response(response, send)
        finally:
            await sync_to_async(response.close)()

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        respond = self._sync.get_response
        if self._lane is not None and request.method == "POST" and request.path == LANE_PATH:
            respond = self._admit
        response: HttpResponseBase = await sync_to_async(respond, thread_sensitive=True)(request)
        return response

    def _admit(self, request: HttpRequest) -> HttpResponseBase:
        """`POST /v2/tasks`: its common case by the lane (where it applies), the rest by the full chain."""
        response = self._lane.respond(request) if self._lane is not None else None
        return response or self._sync.get_response(request)


django_asgi_app: Any = Handler(one_thread=ONE_DB_THREAD)
if ONE_DB_THREAD:
    servers.check_connections_after_requests()


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
servers.leave_bodies_to_the_app()
# Everything the server needs is built: keep it out of the collector's passes (55–80 ms each here).
heap.freeze_startup_heap()
heap.watch_pauses()
