"""A finished task's frames are kept for a while, then dropped: memory stays bounded."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio

from orchestrator.events.base import UNFINISHED_LOG_MAX_AGE_S
from orchestrator.events.memory import PRUNE_INTERVAL_S, InProcessEventLog
from orchestrator.events.redis import RedisEventLog

from .conftest import AnyEventLog


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def finished_task(log: AnyEventLog, task_id: str) -> None:
    await log.append(task_id, "token", {"t": "a"})
    await log.terminate(task_id, "end", {})


async def test_it_drops_the_log_after_its_ttl(event_log: AnyEventLog, task_id: str) -> None:
    # given
    await finished_task(event_log, task_id)

    # when
    await event_log.expire(task_id, 1)

    # then: still there, and gone once the second has passed
    assert await event_log.exists(task_id)
    deadline = time.monotonic() + 3
    while await event_log.exists(task_id):
        assert time.monotonic() < deadline, "the log outlived its TTL"
        await asyncio.sleep(0.05)
    assert await event_log.read(task_id, after=-1, timeout_s=0) == []
    assert (await event_log.stats(task_id)).frames == 0


async def test_expiring_an_unknown_task_creates_nothing(event_log: AnyEventLog, task_id: str) -> None:
    await event_log.expire(task_id, 60)

    assert not await event_log.exists(task_id)
    assert (await event_log.stats(task_id)).frames == 0


async def test_in_process_log_keeps_frames_until_the_ttl(task_id: str) -> None:
    # given
    clock = FakeClock()
    log = InProcessEventLog(clock=clock)
    await finished_task(log, task_id)
    await log.expire(task_id, 60)

    # when / then
    clock.now += 59.9
    assert await log.exists(task_id)
    clock.now += 0.1
    assert not await log.exists(task_id)


async def test_in_process_prune_drops_every_expired_log() -> None:
    # given: three finished tasks, two of them past their TTL
    clock = FakeClock()
    log = InProcessEventLog(clock=clock)
    for task_id, ttl in (("t_1", 10), ("t_2", 10), ("t_3", 100)):
        await finished_task(log, task_id)
        await log.expire(task_id, ttl)

    # when
    clock.now += 50

    # then
    assert log.prune() == 2
    assert await log.exists("t_3")


async def test_in_process_calls_sweep_expired_logs_by_themselves() -> None:
    clock = FakeClock()
    log = InProcessEventLog(clock=clock)
    await finished_task(log, "t_old")
    await log.expire("t_old", 1)

    clock.now += PRUNE_INTERVAL_S
    await log.append("t_other", "started", {})

    assert log.prune() == 0, "t_old was swept by the append"


async def test_in_process_unfinished_log_is_dropped_after_the_max_age(task_id: str) -> None:
    clock = FakeClock()
    log = InProcessEventLog(clock=clock, max_age_s=600)
    await log.append(task_id, "token", {"t": "a"})

    clock.now += 599
    await log.append(task_id, "token", {"t": "b"})  # each append restarts the max age
    clock.now += 599
    assert await log.exists(task_id)
    clock.now += 1
    assert not await log.exists(task_id)


async def test_redis_keys_get_the_ttl(redis_url: str, redis_prefix: str, redis_client: redis.asyncio.Redis) -> None:
    # given
    log = RedisEventLog(redis_url, prefix=redis_prefix)
    await finished_task(log, "t_1")
    await log.attach("t_1")

    # when
    await log.expire("t_1", 1)

    # then: every key of the task expires within the second
    keys = log.keys("t_1")
    assert await redis_client.exists(*keys) == 2
    for key in keys:
        assert 0 < await redis_client.pttl(key) <= 1000
    await log.aclose()


async def test_redis_unfinished_log_keys_get_the_max_age(
    redis_url: str, redis_prefix: str, redis_client: redis.asyncio.Redis
) -> None:
    log = RedisEventLog(redis_url, prefix=redis_prefix)
    await log.append("t_1", "token", {"t": "a"})
    await log.attach("t_2")  # a watcher before the first frame

    for key in (*log.keys("t_1"), log.keys("t_2")[1]):
        assert UNFINISHED_LOG_MAX_AGE_S - 5 < await redis_client.ttl(key) <= UNFINISHED_LOG_MAX_AGE_S
    await log.aclose()


async def test_redis_watchers_keep_the_retention_ttl(
    redis_url: str, redis_prefix: str, redis_client: redis.asyncio.Redis
) -> None:
    log = RedisEventLog(redis_url, prefix=redis_prefix)
    await finished_task(log, "t_1")
    await log.expire("t_1", 30)

    await log.attach("t_1")
    await log.detach("t_1", now_ms=1)

    assert 0 < await redis_client.ttl(log.keys("t_1")[1]) <= 30
    await log.aclose()


async def test_redis_log_starts_afresh_when_only_its_stream_outlived_the_meta(
    redis_url: str, redis_prefix: str, redis_client: redis.asyncio.Redis
) -> None:
    # given: a stream left behind without its counters
    log = RedisEventLog(redis_url, prefix=redis_prefix)
    await finished_task(log, "t_1")
    await redis_client.delete(log.keys("t_1")[1])

    # when
    seq = await log.append("t_1", "token", {"t": "new"})

    # then
    assert seq == 0
    assert [f.data for f in await log.read("t_1", after=-1, timeout_s=0)] == [{"t": "new"}]
    await log.aclose()
