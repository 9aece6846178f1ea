"""Wake-ups and control messages between processes, over the channel layer.

Dispatchers join one group and react at once to "a task was admitted",
"a slot was freed", "cancel task X" and "pools were lost". These messages
only speed things up: every dispatcher also sweeps the database every
second, so a lost message delays work by at most that long. Tokens never go
through here (channels-redis drops group messages over capacity).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger("orchestrator.dispatch")

GROUP = "orchd.dispatchers"

# Dispatchers of this process, so a message reaches them even without a shared channel layer.
_local: list[tuple[asyncio.AbstractEventLoop, Callable[[dict[str, Any]], None]]] = []
_local_lock = threading.Lock()


def register_local(loop: asyncio.AbstractEventLoop, handler: Callable[[dict[str, Any]], None]) -> None:
    with _local_lock:
        _local.append((loop, handler))


def unregister_local(handler: Callable[[dict[str, Any]], None]) -> None:
    with _local_lock:
        _local[:] = [(loop, h) for loop, h in _local if h is not handler]


def broadcast(message: dict[str, Any]) -> None:
    """Send `message` to every dispatcher, in this process and (through the layer) in others."""
    _deliver_local(message)
    layer = get_channel_layer()
    if layer is None or layer.__class__.__name__ == "InMemoryChannelLayer":
        return  # one process: the local call above already delivered it
    try:
        async_to_sync(layer.group_send)(GROUP, {"type": "dispatch.message", "body": message})
    except Exception:  # noqa: BLE001 - a lost wake-up costs at most one sweep interval
        logger.warning("dispatch.broadcast_failed", exc_info=True)


def _deliver_local(message: dict[str, Any]) -> None:
    with _local_lock:
        targets = list(_local)
    for loop, handler in targets:
        if not loop.is_closed():
            loop.call_soon_threadsafe(handler, message)


async def abroadcast(message: dict[str, Any]) -> None:
    """`broadcast` from async code, without a thread: the layer's group_send is async already."""
    _deliver_local(message)
    layer = get_channel_layer()
    if layer is None or layer.__class__.__name__ == "InMemoryChannelLayer":
        return
    try:
        await layer.group_send(GROUP, {"type": "dispatch.message", "body": message})
    except Exception:  # noqa: BLE001 - a lost wake-up costs at most one sweep interval
        logger.warning("dispatch.broadcast_failed", exc_info=True)


def wake_dispatchers() -> None:
    broadcast({"kind": "wake"})


def wake_dispatchers_on_commit() -> None:
    transaction.on_commit(wake_dispatchers)
