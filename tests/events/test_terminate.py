"""Exactly one terminal frame, the first written, and nothing after it."""

from __future__ import annotations

from .conftest import AnyEventLog


async def test_it_refuses_appends_after_the_terminal_frame(event_log: AnyEventLog, task_id: str) -> None:
    # given
    await event_log.append(task_id, "token", {"t": "a", "i": 0})
    await event_log.terminate(task_id, "end", {"canceled": True, "finish_reason": "canceled"})

    # when
    refused = await event_log.append(task_id, "token", {"t": "b", "i": 1})

    # then
    assert refused is None
    frames = await event_log.read(task_id, after=-1, timeout_s=0)
    assert [f.event for f in frames] == ["token", "end"]


async def test_it_lets_the_first_terminal_frame_win(event_log: AnyEventLog, task_id: str) -> None:
    first = await event_log.terminate(task_id, "error", {"code": "ENGINE_ERROR"})
    second = await event_log.terminate(task_id, "end", {"canceled": True})

    assert (first, second) == (0, None)
    [frame] = await event_log.read(task_id, after=-1, timeout_s=0)
    assert (frame.event, frame.data, frame.terminal) == ("error", {"code": "ENGINE_ERROR"}, True)


async def test_it_reports_termination_in_stats(event_log: AnyEventLog, task_id: str) -> None:
    await event_log.append(task_id, "started", {})
    assert not (await event_log.stats(task_id)).terminated

    await event_log.terminate(task_id, "end", {})
    await event_log.append(task_id, "metrics", {"queue_depth": 0})

    stats = await event_log.stats(task_id)
    assert (stats.frames, stats.terminated) == (2, True)
