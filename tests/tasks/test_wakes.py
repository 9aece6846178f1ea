"""Broadcasts to the dispatchers (tasks/notify.py): at once here, through the layer elsewhere.

A process's dispatchers get its broadcasts by a direct call; the channel layer
carries them to the other processes, and also back to this one (its
dispatcher is in the group), which skips them: a second pass per admission
would be waste.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels_redis.core import RedisChannelLayer

from orchestrator.tasks import notify
from orchestrator.tasks.dispatcher import Dispatcher
from tests.support.waiting import until


def wake_message() -> dict[str, Any]:
    """A wake-up as this process puts it on the layer."""
    return {"type": "dispatch.message", "body": {"kind": "wake"}, "from": notify._sender()}


class SharedLayer:
    """A channel layer reaching other processes, as far as broadcasts go: its group sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.failures = 0

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the broker went away")
        self.sent.append((group, message))


@pytest.fixture
def layer(monkeypatch: pytest.MonkeyPatch) -> SharedLayer:
    shared = SharedLayer()
    monkeypatch.setattr(notify, "get_channel_layer", lambda: shared)
    monkeypatch.setattr(notify, "_local", [])
    return shared


async def test_a_wake_reaches_this_process_at_once_and_the_others_through_the_layer(layer: SharedLayer) -> None:
    woken: list[dict[str, Any]] = []
    notify.register_local(asyncio.get_running_loop(), woken.append)
    await asyncio.to_thread(notify.wake_dispatchers)  # as admission's on-commit hook calls it
    await notify.abroadcast({"kind": "wake"})  # as the end of a run does
    await until(lambda: len(woken) == 2)
    assert woken == [{"kind": "wake"}] * 2
    assert layer.sent == [(notify.GROUP, wake_message())] * 2


async def test_a_failed_send_is_logged_and_the_next_still_goes_out(
    layer: SharedLayer, caplog: pytest.LogCaptureFixture
) -> None:
    layer.failures = 1
    with caplog.at_level(logging.WARNING, logger="orchestrator.dispatch"):
        await asyncio.to_thread(notify.wake_dispatchers)
    assert [record.message for record in caplog.records] == ["dispatch.broadcast_failed"]
    await asyncio.to_thread(notify.wake_dispatchers)
    assert layer.sent == [(notify.GROUP, wake_message())]


def test_one_process_alone_sends_nothing_on_a_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []
    monkeypatch.setattr(notify, "_group_send", sent.append)
    monkeypatch.setattr(notify, "get_channel_layer", lambda: None)
    notify.wake_dispatchers()
    assert sent == []


def test_a_process_skips_its_own_messages_on_the_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    own = wake_message()
    assert notify.from_elsewhere(own) is None
    assert notify.from_elsewhere({**own, "from": "another-process:1"}) == {"kind": "wake"}
    assert notify.from_elsewhere({"type": "dispatch.message", "body": {"kind": "cancel"}}) == {"kind": "cancel"}
    # A process forked after import shares the start-up id, not the pid: another sender.
    monkeypatch.setattr("os.getpid", lambda: -1)
    assert notify.from_elsewhere(own) == {"kind": "wake"}


@pytest.fixture
async def redis_layer(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RedisChannelLayer]:
    shared = RedisChannelLayer(hosts=[redis_url], prefix=f"orchd-test-{uuid.uuid4().hex[:12]}:ch")
    monkeypatch.setattr(notify, "get_channel_layer", lambda: shared)
    monkeypatch.setattr(notify, "_local", [])
    yield shared
    await shared.flush()
    await shared.close_pools()


@pytest.mark.redis
async def test_a_dispatcher_acts_on_other_processes_messages_only(
    redis_layer: RedisChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    other_process = await redis_layer.new_channel()  # another process's dispatcher, in the group too
    await redis_layer.group_add(notify.GROUP, other_process)
    dispatcher = Dispatcher(asyncio.get_running_loop())
    seen: list[dict[str, Any]] = []
    dispatcher.on_message = seen.append  # type: ignore[method-assign,assignment]
    listening = asyncio.create_task(dispatcher._listen())
    try:
        members = redis_layer.connection(0)
        for _ in range(200):  # until the dispatcher's channel has joined the other one in the group
            if await members.zcard(redis_layer._group_key(notify.GROUP)) == 2:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the dispatcher never joined the group")
        with caplog.at_level(logging.WARNING, logger="orchestrator.dispatch"):
            await asyncio.to_thread(notify.wake_dispatchers)  # this process's own, over real Redis
        assert not caplog.records, "the wake-up was sent"
        assert await asyncio.wait_for(redis_layer.receive(other_process), 5) == wake_message()
        elsewhere = {"type": "dispatch.message", "body": {"kind": "cancel", "task_id": "t_1"}, "from": "other:1"}
        await redis_layer.group_send(notify.GROUP, elsewhere)
        await until(lambda: len(seen) == 1)
        await asyncio.sleep(0.2)  # the own message, had it been taken, would be here by now
        assert seen == [{"kind": "cancel", "task_id": "t_1"}]
    finally:
        listening.cancel()
