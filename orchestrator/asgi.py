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

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402 - Django must be set up first

from orchestrator.tasks.dispatcher import ensure_started  # noqa: E402

Scope = dict[str, Any]


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
