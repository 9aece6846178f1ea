"""A client that goes away is counted and its slot is free at once, whether it was streaming or queued."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.engines import run_fake_engine
from tests.fake_engine.wire import stats_reach

pytestmark = pytest.mark.integration

# Slow enough that no generation below finishes by itself during a test.
SLOW = {"slots": 1, "tokens_per_s": 20}
LONG = {"prompt": "hi", "n_predict": 200, "stream": True}


@pytest.fixture(scope="module")
def single_slot_engine():
    with run_fake_engine("llamacpp", **SLOW) as engine:
        yield engine


@pytest.fixture
def engine(single_slot_engine):
    single_slot_engine.wait_for_stats(active=0, queued=0)
    single_slot_engine.reset()
    return single_slot_engine


async def test_it_counts_a_disconnect_mid_stream_and_frees_the_slot(engine):
    # given: a stream that has started
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("POST", f"{engine.url}/completion", json=LONG) as response:
            chunks = response.aiter_raw()
            await anext(chunks)

        # when: the client has gone; then the next request gets the slot right away
        started = time.monotonic()
        answer = await client.post(f"{engine.url}/completion", json={"prompt": "hi", "n_predict": 1})

    assert answer.json()["stop"] is True
    assert time.monotonic() - started < 3.0  # promptly (generous for loaded CI machines)
    stats = engine.wait_for_stats(client_disconnects=1, completed=1)
    assert (stats["client_disconnects"], stats["completed"], stats["active"]) == (1, 1, 0)


async def test_it_counts_a_client_that_leaves_the_queue(engine):
    # given: the only slot is busy and a second client waits for it
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("POST", f"{engine.url}/completion", json=LONG) as running,
    ):
        chunks = running.aiter_raw()
        await anext(chunks)
        waiting = asyncio.create_task(client.post(f"{engine.url}/completion", json=LONG))
        await stats_reach(client, engine, queued=1)

        # when
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        stats = await stats_reach(client, engine, client_disconnects=1)

        # then
        assert (stats["client_disconnects"], stats["queued"], stats["active"]) == (1, 0, 1)
