"""Any number of clients tail one task, from the start or from where they left."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from orchestrator.events.base import Frame

from .conftest import AnyEventLog

WATCHERS = 50
TOKENS = 200


async def tail(log: AnyEventLog, task_id: str, after: int = -1) -> list[Frame]:
    """What an SSE client receives: every frame after `after`, through the terminal one."""
    received: list[Frame] = []
    while not received or not received[-1].terminal:
        frames = await log.read(task_id, after=after, timeout_s=5)
        assert frames, "the stream stalled"
        received.extend(frames)
        after = frames[-1].seq
    return received


async def write_task(log: AnyEventLog, task_id: str) -> None:
    await log.append(task_id, "started", {"pool_id": "p1"})
    for i in range(TOKENS):
        await log.append(task_id, "token", {"t": f"w{i}", "i": i})
        if i % 10 == 0:
            await asyncio.sleep(0)  # let the watchers in mid-stream
    await log.terminate(task_id, "end", {"tokens_out": TOKENS})


async def test_it_feeds_every_frame_in_order_to_fifty_watchers(
    make_log: Callable[[], AnyEventLog], task_id: str
) -> None:
    # given: watchers on their own handle, some attached before the first frame
    watcher_log, writer = make_log(), make_log()
    early = [asyncio.create_task(tail(watcher_log, task_id)) for _ in range(WATCHERS // 2)]

    # when
    writing = asyncio.create_task(write_task(writer, task_id))
    await asyncio.sleep(0)
    late = [asyncio.create_task(tail(watcher_log, task_id)) for _ in range(WATCHERS - len(early))]
    await writing
    streams = await asyncio.gather(*early, *late)

    # then
    for frames in streams:
        assert [f.seq for f in frames] == list(range(TOKENS + 2))
        assert [f.data["i"] for f in frames if f.event == "token"] == list(range(TOKENS))
        assert (frames[0].event, frames[-1].event) == ("started", "end")


async def test_a_resuming_client_gets_exactly_the_frames_after_its_last(event_log: AnyEventLog, task_id: str) -> None:
    await write_task(event_log, task_id)
    last_seen = random.randrange(TOKENS)

    frames = await tail(event_log, task_id, after=last_seen)

    assert [f.seq for f in frames] == list(range(last_seen + 1, TOKENS + 2))
