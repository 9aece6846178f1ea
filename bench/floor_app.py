"""Apps for `bench.floor`: the servers and Django with none of orchestratord's work.

    daphne bench.floor_app:bare          # ASGI alone: the server's own cost
    daphne bench.floor_app:django        # Django's stock ASGI handler and a sync view
    daphne bench.floor_app:django_async  # the same with an async view
    daphne bench.floor_app:django_lean   # an async view, served as orchestratord serves requests on SQLite
    FLOOR_ENGINE_URL=http://... daphne bench.floor_app:relay   # bytes passed through to an engine

The first four take `POST /v2/tasks`: they read the body, parse it as JSON
and answer 202 with a body of the admission answer's shape and size, so that
the load generator of `bench.admission` sees what it sees from
orchestratord, with no admission behind it. The Django apps have no
middleware and no database.

Django's stock handler gives each request a thread-sensitive context of its
own (a new executor, so a new thread for any sync call), sends
`request_started` to its sync receivers on a thread and closes the response
on one. orchestratord's handler (orchestrator/asgi.py) on SQLite keeps one
thread for all sync code and checks the connections after the view rather
than before it; `django_lean` does the same around an async view. It is a
reference for the CPU of Django's request path as orchestratord uses it, not
a lower bound on orchestratord's hops or tail: it still runs the stock
`handle()` (a task listening for the disconnect beside the one making the
response) and closes each response on the sync thread, where orchestratord
answers admissions in trips of up to 8, closed on the thread in the trip.
Under daphne every app leaves the body to itself as orchestratord does
(`orchestrator.servers`), and every app's start-up heap is frozen out of the
garbage collector's passes as orchestratord's is (`orchestrator.heap`):
without that, the collector's full passes over the modules' objects made
a third to a half of the closed loop's p99 here (bench/tuning.md). `FLOOR_COLLECTOR`
sets the collector otherwise, to measure it (`bench.floor --collectors`):
`started` (nothing frozen), `frozen` (the default, as orchestratord),
`rare` (frozen, and generation 2's threshold a hundred times CPython's,
`gc.set_threshold(700, 10, 1000)`: far fewer full passes), `off`
(`gc.disable()`). A server process serves one of these apps: the
Django apps are built on first access (module `__getattr__`), and Django's
settings can be configured once.
"""

from __future__ import annotations

import gc
import json
import os
import uuid
from typing import Any

import aiohttp

from bench.collectors import COLLECTORS
from orchestrator import heap, servers


def answer_body(task_id: str) -> dict[str, Any]:
    """An admission answer's fields (orchestrator/tasks/admission.py `_answer`), for a task not admitted."""
    return {
        "task_id": task_id,
        "queue_position": 1,
        "predicted_start_ms": 1000,
        "backoff_ms": 0,
        "streams": {"sse": f"/v2/tasks/{task_id}/events", "sse_verbose": f"/v2/tasks/{task_id}/events?verbose=true"},
        "preparation": {"steps": []},
    }


def _task_id(body: bytes) -> str:
    task = json.loads(body)
    return str(task.get("task_id") or uuid.uuid4().hex)


_relay: dict[str, aiohttp.ClientSession] = {}  # the relay's client, made on its loop at its first request


async def _lifespan(receive: Any, send: Any) -> None:
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    if "session" in _relay:
        await _relay.pop("session").close()
    await send({"type": "lifespan.shutdown.complete"})


async def _body(receive: Any) -> bytes:
    body = b""
    while True:
        message: dict[str, Any] = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = await _body(receive)
    if scope["method"] == "POST" and scope["path"] == "/v2/tasks":
        status, payload = 202, json.dumps(answer_body(_task_id(body))).encode()
    else:
        status, payload = 200, b'{"status":"ok"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def relay(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The request passed to the engine, and its answer's bytes back as they come: no parsing, no state.

    About the least a relay in Python costs, against which orchestratord's
    share of the engine's throughput can be read. A connection per request, as
    llama-server needs (bench/clients.py).
    """
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = await _body(receive)
    if scope["path"] == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if "session" not in _relay:
        _relay["session"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), timeout=aiohttp.ClientTimeout(total=None)
        )
    headers = {"Content-Type": "application/json"}
    query = scope.get("query_string", b"").decode()
    url = os.environ["FLOOR_ENGINE_URL"] + scope["path"] + (f"?{query}" if query else "")
    async with _relay["session"].request(scope["method"], url, data=body, headers=headers) as answer:
        kind = answer.headers.get("Content-Type", "application/octet-stream").encode()
        await send({"type": "http.response.start", "status": answer.status, "headers": [(b"content-type", kind)]})
        async for chunk in answer.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _django(lean: bool) -> Any:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-floor",  # noqa: S106 - a throwaway app on loopback
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup(set_prefix=False)
    from django.core.handlers.asgi import ASGIHandler

    if not lean:
        return ASGIHandler()

    class LeanHandler(ASGIHandler):
        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
            await self.handle(scope, receive, send)  # no thread-sensitive context of its own

    servers.check_connections_after_requests()
    return LeanHandler()


def _tasks(request: Any) -> Any:
    from django.http import JsonResponse

    if request.method != "POST":
        return JsonResponse({"status": "ok"})
    return JsonResponse(answer_body(_task_id(request.body)), status=202)


async def _tasks_async(request: Any) -> Any:
    return _tasks(request)


def _healthz(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"status": "ok"})


_built: dict[str, Any] = {}

# Under daphne, the body left to the app, as orchestratord's process leaves it (no Django in it).
servers.leave_bodies_to_the_app()
_THRESHOLDS = gc.get_threshold()  # CPython's, before any change here


def _set_collector() -> None:
    """The collector as `FLOOR_COLLECTOR` says; by default as orchestratord's process sets it once built.

    Called again once a Django app is built, to freeze what it built too: each setting is
    absolute, so a second call sets the same.
    """
    collector = os.environ.get("FLOOR_COLLECTOR", "frozen")
    if collector not in COLLECTORS:
        raise ValueError(f"FLOOR_COLLECTOR={collector!r}: one of {', '.join(COLLECTORS)}")
    if collector in ("frozen", "rare"):
        heap.freeze_startup_heap()
    if collector == "rare":
        threshold0, threshold1, threshold2 = _THRESHOLDS
        gc.set_threshold(threshold0, threshold1, threshold2 * 100)
    elif collector == "off":
        gc.disable()


_set_collector()


def __getattr__(name: str) -> Any:
    if name in ("django", "django_async", "django_lean"):
        if name not in _built:
            _built["view"] = _tasks if name == "django" else _tasks_async
            _built[name] = _django(lean=name == "django_lean")
            _set_collector()  # over what Django built, too
        return _built[name]
    if name == "urlpatterns":
        from django.urls import path

        return [path("v2/tasks", _built["view"]), path("healthz", _healthz)]
    raise AttributeError(name)
