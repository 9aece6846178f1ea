"""Every behaviour runs against both backends: `event_log` is parametrized over them.

Redis: `redis_url` (tests/support/redis_server.py). Each test gets its own
key prefix, so parallel xdist workers never share a key.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from orchestrator.events.memory import InProcessEventLog
from orchestrator.events.redis import RedisEventLog

AnyEventLog = InProcessEventLog | RedisEventLog


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test alone; its keys are deleted afterwards."""
    prefix = f"orchd-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client, to look at the keys behind the log."""
    client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_store(backend: str, request: pytest.FixtureRequest) -> tuple[str, str] | None:
    """(url, prefix) of the Redis store under test; None in-process."""
    if backend == "memory":
        return None
    return request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")


@pytest.fixture
async def make_log(redis_store: tuple[str, str] | None) -> AsyncIterator[Callable[[], AnyEventLog]]:
    """Handles on one store: the same object in-process, a new client each for Redis."""
    memory = InProcessEventLog()
    made: list[RedisEventLog] = []

    def make() -> AnyEventLog:
        if redis_store is None:
            return memory
        made.append(RedisEventLog(redis_store[0], prefix=redis_store[1]))
        return made[-1]

    yield make
    for log in made:
        await log.aclose()
        log.close_now()


@pytest.fixture
def event_log(make_log: Callable[[], AnyEventLog]) -> AnyEventLog:
    return make_log()


@pytest.fixture
def task_id() -> str:
    return f"t_{uuid.uuid4().hex}"


def run_in_own_loop(log: AnyEventLog, work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run `work` in a fresh event loop of the calling thread, as async_to_sync does."""

    async def main() -> Any:
        try:
            return await work()
        finally:
            await log.aclose()

    return asyncio.run(main())
