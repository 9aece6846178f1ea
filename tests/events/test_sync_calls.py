"""Sync code's calls (`SyncEventLog`): the same log as async code's, without a trip through an event loop.

Views, Celery jobs and the DB thread append, terminate, read stats and set
expiries from sync code. Both logs serve them in the calling thread (`*_now`):
the in-process log never waits, and Redis' calls wait on a client of their own.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import redis.asyncio

from orchestrator import events
from orchestrator.events import SyncEventLog
from orchestrator.events.redis import RedisEventLog

from .conftest import AnyEventLog


@pytest.fixture
def no_event_loop_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a sync call went through async_to_sync")

    monkeypatch.setattr(events, "async_to_sync", refused)


async def test_sync_and_async_calls_write_one_log(
    event_log: AnyEventLog, task_id: str, no_event_loop_trips: None
) -> None:
    log = SyncEventLog(event_log)

    def sync_writer() -> list[int | None]:
        return [log.append(task_id, "started", {}), log.append(task_id, "token", {"t": "a"})]

    assert await asyncio.to_thread(sync_writer) == [0, 1]
    assert await event_log.append(task_id, "token", {"t": "b"}) == 2
    assert await asyncio.to_thread(log.terminate, task_id, "end", {"reason": "stop"}) == 3
    assert await asyncio.to_thread(log.append, task_id, "token", {"t": "late"}) is None, "nothing after the end"
    frames = await event_log.read(task_id, after=-1, timeout_s=0)
    assert [(frame.event, frame.data) for frame in frames] == [
        ("started", {}),
        ("token", {"t": "a"}),
        ("token", {"t": "b"}),
        ("end", {"reason": "stop"}),
    ]
    stats = await asyncio.to_thread(log.stats, task_id)
    assert (stats.frames, stats.tokens, stats.terminated) == (4, 2, True)
    assert stats.first_token_ms is not None
    assert stats == await event_log.stats(task_id)


async def test_sync_calls_refuse_the_wrong_kind_of_event(event_log: AnyEventLog, task_id: str) -> None:
    log = SyncEventLog(event_log)
    with pytest.raises(ValueError, match="is a terminal event"):
        await asyncio.to_thread(log.append, task_id, "end", {})
    with pytest.raises(ValueError, match="not a terminal event"):
        await asyncio.to_thread(log.terminate, task_id, "token", {})
    assert (await event_log.stats(task_id)).frames == 0


async def test_a_sync_expiry_drops_the_log_after_its_ttl(
    event_log: AnyEventLog, task_id: str, no_event_loop_trips: None
) -> None:
    log = SyncEventLog(event_log)
    await event_log.append(task_id, "started", {})
    await asyncio.to_thread(log.expire, task_id, 1)
    assert await event_log.exists(task_id)
    await asyncio.sleep(1.2)
    assert not await event_log.exists(task_id)
    assert (await asyncio.to_thread(log.stats, task_id)).frames == 0


async def test_redis_sync_calls_use_one_client_of_their_own(
    redis_url: str, redis_prefix: str, redis_client: redis.asyncio.Redis, no_event_loop_trips: None
) -> None:
    log = RedisEventLog(redis_url, prefix=redis_prefix)
    sync = SyncEventLog(log)
    await asyncio.gather(*(asyncio.to_thread(sync.append, "t_1", "token", {"i": i}) for i in range(20)))
    assert log._connections == {}, "no event loop's client was made for them"
    client = log._sync_connection().client
    assert client.connection_pool._created_connections > 0, "the sync client did the writes"
    assert [frame.seq for frame in await log.read("t_1", after=-1, timeout_s=0)] == list(range(20))
    assert sorted(frame.data["i"] for frame in await log.read("t_1", after=-1, timeout_s=0)) == list(range(20))
    assert log._sync_connection().client is client, "threads share the client (its pool is thread-safe)"
    assert await redis_client.pttl(log.keys("t_1")[0]) > 0, "unfinished logs get the max age, as from async code"
    log.close_now()
    await log.aclose()


def test_redis_sync_client_is_not_shared_with_a_forked_child(redis_url: str, redis_prefix: str) -> None:
    log = RedisEventLog(redis_url, prefix=redis_prefix)
    parents = log._sync_connection().client
    log._pid = os.getpid() + 1  # as a child process sees the parent's pid
    childs = log._sync_connection().client
    assert childs is not parents
    assert log.append_now("t_1", "started", {}) == 0
    parents.close()
    log.close_now()
