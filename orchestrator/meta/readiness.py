"""Readiness: can this process reach the database, the channel layer and the broker?"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

logger = logging.getLogger("orchestrator.meta")

# Each probe gets this long; readiness must answer fast even when a service hangs.
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ProbeResult:
    component: str
    ok: bool
    detail: str = "ok"


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    connection.close_if_unusable_or_obsolete()


def _broker() -> None:
    from orchestrator.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=int(PROBE_TIMEOUT_S))


async def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "readiness.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readiness.ping":
        raise RuntimeError("channel layer returned another message")


async def _probe(component: str, check: Callable[[], Awaitable[None]]) -> ProbeResult:
    try:
        await asyncio.wait_for(check(), PROBE_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported by name
        logger.warning("readiness.failed", extra={"component": component, "error": repr(exc)})
        return ProbeResult(component, False, f"{type(exc).__name__}: {exc}"[:300])
    return ProbeResult(component, True)


async def probe_all() -> list[ProbeResult]:
    return list(
        await asyncio.gather(
            _probe("database", sync_to_async(_database, thread_sensitive=False)),
            _probe("channel_layer", _channel_layer),
            _probe("broker", sync_to_async(_broker, thread_sensitive=False)),
        )
    )
