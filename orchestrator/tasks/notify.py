"""Wake-ups and control messages between processes, over the channel layer.

Dispatchers join one group and react at once to "a task was admitted",
"a slot was freed", "cancel task X" and "pools were lost". These messages
only speed things up: every dispatcher also sweeps the database every
second, so a lost message delays work by at most that long. Tokens never go
through here (channels-redis drops group messages over capacity).

A process's own messages come back to it through the layer (its dispatcher
is in the group): it skips them (`from_elsewhere`), as its dispatchers had
them at once by the local call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger("orchestrator.dispatch")

GROUP = "orchd.dispatchers"
# Marks this process's messages on the layer (its own dispatchers had them delivered at once),
# with the pid: a process forked after import (a pre-forking server) is another sender.
_STARTED = uuid.uuid4().hex


def _sender() -> str:
    return f"{_STARTED}:{os.getpid()}"


# Dispatchers of this process, so a message reaches them even without a shared channel layer.
_local: list[tuple[asyncio.AbstractEventLoop, Callable[[dict[str, Any]], None]]] = []
_local_lock = threading.Lock()


def register_local(loop: asyncio.AbstractEventLoop, handler: Callable[[dict[str, Any]], None]) -> None:
    with _local_lock:
        _local.append((loop, handler))


def unregister_local(handler: Callable[[dict[str, Any]], None]) -> None:
    with _local_lock:
        _local[:] = [(loop, h) for loop, h in _local if h is not handler]


def shared_layer() -> Any:
    """The channel layer, when it reaches other processes; None otherwise."""
    layer = get_channel_layer()
    if layer is None or layer.__class__.__name__ == "InMemoryChannelLayer":
        return None  # one process: the local delivery reaches every dispatcher
    return layer


async def _group_send(message: dict[str, Any]) -> None:
    layer = shared_layer()
    if layer is None:
        return
    try:
        await layer.group_send(GROUP, {"type": "dispatch.message", "body": message, "from": _sender()})
    except Exception:  # noqa: BLE001 - a lost wake-up costs at most one sweep interval
        logger.warning("dispatch.broadcast_failed", exc_info=True)


def broadcast(message: dict[str, Any]) -> None:
    """Send `message` to every dispatcher, in this process and (through the layer) in others."""
    _deliver_local(message)
    if shared_layer() is None:
        return
    try:
        async_to_sync(_group_send)(message)
    except Exception:  # noqa: BLE001 - e.g. called on an event loop's thread: the sweep is the net
        logger.warning("dispatch.broadcast_failed", exc_info=True)


async def abroadcast(message: dict[str, Any]) -> None:
    """`broadcast` from async code, without a thread: the layer's group_send is async already."""
    _deliver_local(message)
    await _group_send(message)


def from_elsewhere(layer_message: dict[str, Any]) -> dict[str, Any] | None:
    """The message another process sent; None for this process's own (delivered here already)."""
    if layer_message.get("from") == _sender():
        return None
    return layer_message.get("body") or {}


def _deliver_local(message: dict[str, Any]) -> None:
    with _local_lock:
        targets = list(_local)
    for loop, handler in targets:
        if not loop.is_closed():
            loop.call_soon_threadsafe(handler, message)


def wake_dispatchers() -> None:
    broadcast({"kind": "wake"})


def wake_dispatchers_on_commit() -> None:
    transaction.on_commit(wake_dispatchers)
