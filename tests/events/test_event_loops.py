"""The log is called from many event loops: daphne's, and a fresh one per async_to_sync call."""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import async_to_sync

from orchestrator.events.redis import RedisEventLog

from .conftest import AnyEventLog, run_in_own_loop


async def test_it_serves_a_sync_caller_through_async_to_sync(event_log: AnyEventLog, task_id: str) -> None:
    # given: a reader waiting in this loop
    read = asyncio.create_task(event_log.read(task_id, after=-1, timeout_s=5))
    await asyncio.sleep(0.05)

    # when: a sync view appends, then reads
    def sync_view() -> list[int]:
        async_to_sync(event_log.append)(task_id, "token", {"t": "a"})
        frames = async_to_sync(event_log.read)(task_id, -1, 0)
        async_to_sync(event_log.aclose)()
        return [frame.seq for frame in frames]

    started = time.perf_counter()
    assert await asyncio.to_thread(sync_view) == [0]

    # then
    assert [f.seq for f in await read] == [0]
    assert time.perf_counter() - started < 3  # promptly (generous for loaded CI machines)


def test_it_works_from_one_loop_after_another(event_log: AnyEventLog, task_id: str) -> None:
    # each asyncio.run closes its loop; the next call must not reuse that loop's client
    for i in range(3):
        assert asyncio.run(event_log.append(task_id, "token", {"i": i})) == i

    frames = run_in_own_loop(event_log, lambda: event_log.read(task_id, -1, 0))
    assert [f.data["i"] for f in frames] == [0, 1, 2]


async def test_redis_log_has_one_client_per_event_loop(redis_url: str, redis_prefix: str) -> None:
    # given
    log = RedisEventLog(redis_url, prefix=redis_prefix)
    await log.append("t_1", "started", {})
    here = log._connection().client

    # when: two more loops use the log one after the other, closing as asyncio.run does
    first = await asyncio.to_thread(asyncio.run, _client_of(log))
    second = await asyncio.to_thread(asyncio.run, _client_of(log))

    # then: each loop had a client of its own, and closed loops' clients are not kept
    assert len({id(here), id(first), id(second)}) == 3
    assert log._connection().client is here
    assert len(log._connections) == 2, "the first closed loop's client was dropped"
    assert [f.seq for f in await log.read("t_1", after=-1, timeout_s=0)] == [0, 1, 2]
    await log.aclose()


async def _client_of(log: RedisEventLog) -> object:
    await log.append("t_1", "token", {})
    return log._connection().client
