"""Counters kept beside the frames."""

from __future__ import annotations

import time

from orchestrator.events.base import LogStats

from .conftest import AnyEventLog


def epoch_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_it_reports_zeros_for_an_unknown_task(event_log: AnyEventLog, task_id: str) -> None:
    stats = await event_log.stats(task_id)

    assert stats == LogStats(frames=0, tokens=0, first_token_ms=None, terminated=False, watchers=0, last_detach_ms=None)


async def test_it_counts_tokens_and_times_the_first(event_log: AnyEventLog, task_id: str) -> None:
    # given
    await event_log.append(task_id, "started", {})
    await event_log.append(task_id, "metrics", {"queue_depth": 0})
    assert (await event_log.stats(task_id)).first_token_ms is None

    # when
    before = epoch_ms()
    await event_log.append(task_id, "token", {"t": "a", "i": 0})
    after = epoch_ms()
    await event_log.append(task_id, "token", {"t": "b", "i": 1})
    await event_log.terminate(task_id, "end", {"tokens_out": 2})

    # then
    stats = await event_log.stats(task_id)
    assert (stats.frames, stats.tokens, stats.terminated) == (5, 2, True)
    assert stats.first_token_ms is not None
    assert before <= stats.first_token_ms <= after


async def test_it_counts_watchers(event_log: AnyEventLog, task_id: str) -> None:
    await event_log.attach(task_id)
    await event_log.attach(task_id)
    await event_log.detach(task_id, now_ms=1_700_000_000_000)

    stats = await event_log.stats(task_id)

    assert (stats.watchers, stats.last_detach_ms) == (1, 1_700_000_000_000)


async def test_it_never_counts_below_zero_watchers(event_log: AnyEventLog, task_id: str) -> None:
    await event_log.detach(task_id, now_ms=5)
    await event_log.attach(task_id)

    assert (await event_log.stats(task_id)).watchers == 1


async def test_a_watcher_alone_does_not_make_the_log_exist(event_log: AnyEventLog, task_id: str) -> None:
    await event_log.attach(task_id)

    assert not await event_log.exists(task_id)
    assert (await event_log.stats(task_id)).frames == 0
