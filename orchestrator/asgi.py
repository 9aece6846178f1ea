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

from channels.routing import ProtocolTypeRouter  # noqa: E402 - Django must be set up first
from django.db import connection  # noqa: E402

from orchestrator.tasks.dispatcher import ensure_started  # noqa: E402

Scope = dict[str, Any]


class OneSyncThreadHandler(ASGIHandler):
    """Django's ASGI handler, running all sync code of the process on one thread (on SQLite).

    Django gives each request its own thread for sync code (a
    ThreadSensitiveContext per request), kept until the response ends. With
    SQLite that buys nothing and costs a lot: SQLite has one writer, so the
    threads' connections queue on its busy handler, which sleeps and polls
    (under load writers starve past the busy timeout: "database is locked");
    and every open SSE stream pins an idle thread. On one thread, sync code
    runs one call at a time on one connection, exactly as the dispatcher's
    already does. On PostgreSQL, queries wait on the network, so the
    per-request threads stay.
    """

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)


django_asgi_app = OneSyncThreadHandler() if connection.vendor == "sqlite" else ASGIHandler()


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
