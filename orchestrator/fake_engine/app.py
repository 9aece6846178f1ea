"""The aiohttp application and the server loop behind `manage.py fake_engine`."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from orchestrator.fake_engine import llamacpp, openai, tgi
from orchestrator.fake_engine.config import EngineConfig, Protocol
from orchestrator.fake_engine.engine import FakeEngine
from orchestrator.fake_engine.streaming import json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ENGINE_KEY = web.AppKey("engine", FakeEngine)

# Other requests still open at shutdown get this long.
SHUTDOWN_GRACE_S = 1.0


@dataclass(frozen=True)
class Dialect:
    routes: Callable[[FakeEngine], list[web.RouteDef]]
    loading_error: Callable[[], web.Response]


DIALECTS: dict[Protocol, Dialect] = {
    "llamacpp": Dialect(llamacpp.routes, llamacpp.loading_error),
    "openai": Dialect(openai.routes, openai.loading_error),
    "tgi": Dialect(tgi.routes, tgi.loading_error),
}


def build_app(config: EngineConfig) -> web.Application:
    engine = FakeEngine(config)
    dialect = DIALECTS[config.protocol]

    @web.middleware
    async def while_loading(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Like llama-server, every engine route answers 503 until the model is "loaded".
        if engine.loading() and not request.path.startswith("/_fake/"):
            return dialect.loading_error()
        return await handler(request)

    app = web.Application(middlewares=[while_loading])
    app[ENGINE_KEY] = engine
    app.add_routes(dialect.routes(engine))
    app.add_routes([web.get("/_fake/stats", stats), web.post("/_fake/reset", reset)])
    return app


async def stats(request: web.Request) -> web.Response:
    """Counters for tests: active/queued now, and what happened since the last reset."""
    return json_response(dataclasses.asdict(request.app[ENGINE_KEY].stats))


async def reset(request: web.Request) -> web.Response:
    engine = request.app[ENGINE_KEY]
    engine.stats.reset()
    return json_response(dataclasses.asdict(engine.stats))


async def serve(config: EngineConfig, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Listen until SIGTERM or SIGINT, calling `announce` with the ready line once bound."""
    # handler_cancellation: a client that disconnects cancels its handler at once,
    # which is how a disconnect frees the slot even while the stream is stalled.
    app = build_app(config)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        authority = _authority(host, _bound_port(runner, port))
        announce(f"fake_engine listening on http://{authority} protocol={config.protocol}")
        await stop.wait()
        # Like a real engine going down: in-flight streams end now, without a terminal frame.
        app[ENGINE_KEY].abort_all()
    finally:
        await runner.cleanup()


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    """The real port when asked for port 0."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
