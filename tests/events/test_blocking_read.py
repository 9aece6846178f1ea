"""A reader waits for the next frame and wakes as soon as it is written."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .conftest import AnyEventLog, run_in_own_loop

# Far above the real wake-up time (well under a millisecond), far below the 5 s timeouts used:
# generous, because CI machines are loaded and this checks behaviour, not speed.
PROMPTLY_S = 2.0


async def wait_until_blocked() -> None:
    # A reader checks, then waits: give it time to be waiting for sure.
    await asyncio.sleep(0.05)


async def test_it_wakes_a_blocked_reader_at_once(make_log: Callable[[], AnyEventLog], task_id: str) -> None:
    # given: a reader and a writer on separate handles (separate Redis connections)
    reader, writer = make_log(), make_log()
    read = asyncio.create_task(reader.read(task_id, after=-1, timeout_s=5))
    await wait_until_blocked()

    # when
    started = time.perf_counter()
    await writer.append(task_id, "token", {"t": "a", "i": 0})
    frames = await read

    # then
    assert time.perf_counter() - started < PROMPTLY_S
    assert [f.seq for f in frames] == [0]


async def test_it_wakes_a_reader_when_the_writer_runs_in_another_thread_and_loop(
    make_log: Callable[[], AnyEventLog], task_id: str
) -> None:
    reader, writer = make_log(), make_log()
    read = asyncio.create_task(reader.read(task_id, after=-1, timeout_s=5))
    await wait_until_blocked()

    started = time.perf_counter()
    await asyncio.to_thread(run_in_own_loop, writer, lambda: writer.append(task_id, "token", {"t": "a"}))
    frames = await read

    assert time.perf_counter() - started < PROMPTLY_S
    assert [f.data for f in frames] == [{"t": "a"}]


async def test_it_returns_nothing_when_the_wait_times_out(event_log: AnyEventLog, task_id: str) -> None:
    await event_log.append(task_id, "started", {})

    started = time.perf_counter()
    frames = await event_log.read(task_id, after=0, timeout_s=0.2)

    assert frames == []
    assert 0.19 <= time.perf_counter() - started < 0.2 + PROMPTLY_S


async def test_it_does_not_wait_with_a_zero_timeout(event_log: AnyEventLog, task_id: str) -> None:
    started = time.perf_counter()

    assert await event_log.read(task_id, after=-1, timeout_s=0) == []
    assert time.perf_counter() - started < PROMPTLY_S


async def test_it_does_not_wait_on_a_terminated_log(event_log: AnyEventLog, task_id: str) -> None:
    # given: a client resuming after the terminal frame
    await event_log.terminate(task_id, "end", {})

    # when
    started = time.perf_counter()
    frames = await event_log.read(task_id, after=0, timeout_s=5)

    # then
    assert frames == []
    assert time.perf_counter() - started < PROMPTLY_S


async def test_it_waits_past_frames_the_reader_has_already(make_log: Callable[[], AnyEventLog], task_id: str) -> None:
    # given: a reader resuming further than the log has come yet
    reader, writer = make_log(), make_log()
    read = asyncio.create_task(reader.read(task_id, after=1, timeout_s=5))
    await wait_until_blocked()

    # when
    await writer.append(task_id, "token", {"i": 0})
    await writer.append(task_id, "token", {"i": 1})
    await asyncio.sleep(0.05)
    assert not read.done()
    await writer.append(task_id, "token", {"i": 2})

    # then
    assert [f.seq for f in await read] == [2]


async def test_a_cancelled_reader_leaves_the_log_working(make_log: Callable[[], AnyEventLog], task_id: str) -> None:
    reader, writer = make_log(), make_log()
    read = asyncio.create_task(reader.read(task_id, after=-1, timeout_s=5))
    await wait_until_blocked()

    read.cancel()
    await asyncio.gather(read, return_exceptions=True)
    await writer.append(task_id, "token", {"i": 0})

    assert read.cancelled()
    assert [f.seq for f in await reader.read(task_id, after=-1, timeout_s=1)] == [0]
