"""Apps for `bench.floor`: the servers and Django with none, or the least, of orchestratord's work.

    daphne bench.floor_app:bare          # ASGI alone: the server's own cost
    daphne bench.floor_app:django        # Django's stock ASGI handler and a sync view
    daphne bench.floor_app:django_async  # the same with an async view
    daphne bench.floor_app:django_lean   # an async view, served as orchestratord serves requests on SQLite
    daphne bench.floor_app:django_lean_persisted       # the same, persisting each task in SQLite first
    daphne bench.floor_app:django_lean_persisted_loop  # the same statements, on the loop's thread
    FLOOR_ENGINE_URL=http://... daphne bench.floor_app:relay   # bytes passed through to an engine

All but `relay` take `POST /v2/tasks`: they read the body, parse it as JSON
and answer 202 with a body of the admission answer's shape and size, so that
the load generator of `bench.admission` sees what it sees from
orchestratord, with no admission behind it. The Django apps have no
middleware, and all but the two `persisted` ones no database.

`django_lean_persisted` is `django_lean` plus the least a persisted
admission does (the issue: "no change may weaken ... persisted admission"):
in one IMMEDIATE transaction, the bearer token looked up by its digest and
the task's row inserted (its id, time, state, priority and the request's
body, with an index for the queue's order), then the commit, in SQLite
with orchestratord's pragmas (`orchestrator.db`), in `FLOOR_DATA_DIR` or a
temporary folder. It runs through Django's connection on the one sync
thread, as Django has sync database code run under ASGI and as
orchestratord runs it. No validation, budget, session, placement, metric,
log line or tally trigger, and the token is read in the write transaction
(orchestratord reads it before, apart). Unlike orchestratord, it takes
each request to the sync thread on its own: two hops a request, the
view's and Django's close of the response (`django_lean` makes the
second only), where orchestratord answers and closes admissions in trips
of up to 8. `django_lean_persisted_loop` runs the same statements on a raw
sqlite3 connection on the event loop's own thread, which Django's ORM
refuses to do: what the same work costs with no second thread taking the
GIL in turns with the loop.

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

import atexit
import contextlib
import functools
import gc
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench.floor_settings import COLLECTORS, FLOOR_TOKEN
from orchestrator import heap, servers
from orchestrator.auth.digests import hash_token
from orchestrator.db import sqlite_init_command


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


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS floor_token (id INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS floor_task (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, state TEXT NOT NULL,"
    " priority INTEGER NOT NULL, request TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS floor_task_queue ON floor_task (state, priority, created_at)",
)


def _database(persisted: bool) -> dict[str, Any]:
    if not persisted:
        return {}
    folder = os.environ.get("FLOOR_DATA_DIR")  # bench.floor gives each app a folder it removes
    if not folder:  # run by hand: removed at exit (uvicorn, which re-raises SIGTERM, leaves it)
        folder = tempfile.mkdtemp(prefix="orchd-floor-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    name = os.path.join(folder, "floor.sqlite3")
    options = {"init_command": sqlite_init_command(), "transaction_mode": "IMMEDIATE", "timeout": 20}  # orchestratord's
    return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": name, "OPTIONS": options, "CONN_MAX_AGE": None}}


def _create_schema() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for statement in _SCHEMA:
            cursor.execute(statement)
        cursor.execute("INSERT OR IGNORE INTO floor_token (digest) VALUES (?)", [hash_token(FLOOR_TOKEN)])
    connection.close()  # the sync thread opens its own


def _django(lean: bool, persisted: bool = False) -> Any:
    import django
    from django.conf import settings

    settings.configure(
        DATABASES=_database(persisted),
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
    if persisted:
        _create_schema()
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


# `?` placeholders: raw sqlite3's, which Django's SQLite cursor passes through as they are.
_LOOKUP = "SELECT id FROM floor_token WHERE digest = ?"
_INSERT = "INSERT INTO floor_task (id, created_at, state, priority, request) VALUES (?, ?, 'queued', 0, ?)"


def _store(cursor: Any, task_id: str, body: bytes, authorization: str) -> bool:
    """The token checked and the task's row inserted; False if the token is unknown."""
    cursor.execute(_LOOKUP, [hash_token(authorization.removeprefix("Bearer "))])
    if cursor.fetchone() is None:
        return False
    cursor.execute(_INSERT, [task_id, datetime.now(UTC).isoformat(), body.decode()])
    return True


def _persist(task_id: str, body: bytes, authorization: str) -> bool:
    """`_store` in a transaction of Django's connection (on the one sync thread)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        return _store(cursor, task_id, body, authorization)


@functools.cache
def _loop_connection() -> sqlite3.Connection:
    """The event loop thread's raw connection, opened once as Django opens its own (the same init command)."""
    from django.conf import settings

    db = sqlite3.connect(str(settings.DATABASES["default"]["NAME"]), isolation_level=None, timeout=20)
    db.executescript(sqlite_init_command())
    return db


def _persist_on_loop(task_id: str, body: bytes, authorization: str) -> bool:
    """`_store` in a transaction of a raw sqlite3 connection, called on the event loop's thread."""
    db = _loop_connection()
    db.execute("BEGIN IMMEDIATE")
    try:
        stored = _store(db.cursor(), task_id, body, authorization)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the error that got here is the one to see
                db.execute("ROLLBACK")
        raise
    return stored


def _persisted_answer(task_id: str, persisted: bool) -> Any:
    from django.http import JsonResponse

    if not persisted:
        return JsonResponse({"error": {"code": "unauthenticated"}}, status=401)
    return JsonResponse(answer_body(task_id), status=202)


async def _tasks_persisted(request: Any) -> Any:
    from asgiref.sync import sync_to_async

    if request.method != "POST":
        return _tasks(request)
    task_id = _task_id(request.body)
    authorization = request.headers.get("Authorization", "")
    persisted = await sync_to_async(_persist, thread_sensitive=True)(task_id, request.body, authorization)
    return _persisted_answer(task_id, persisted)


async def _tasks_persisted_on_loop(request: Any) -> Any:
    if request.method != "POST":
        return _tasks(request)
    task_id = _task_id(request.body)
    persisted = _persist_on_loop(task_id, request.body, request.headers.get("Authorization", ""))
    return _persisted_answer(task_id, persisted)


def _healthz(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"status": "ok"})


DJANGO_APPS = {  # each app's view
    "django": _tasks,
    "django_async": _tasks_async,
    "django_lean": _tasks_async,
    "django_lean_persisted": _tasks_persisted,
    "django_lean_persisted_loop": _tasks_persisted_on_loop,
}


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
    if name in DJANGO_APPS:
        if name not in _built:
            _built["view"] = DJANGO_APPS[name]
            _built[name] = _django(lean=name.startswith("django_lean"), persisted="persisted" in name)
            _set_collector()  # over what Django built, too
        return _built[name]
    if name == "urlpatterns":
        from django.urls import path

        return [path("v2/tasks", _built["view"]), path("healthz", _healthz)]
    raise AttributeError(name)
