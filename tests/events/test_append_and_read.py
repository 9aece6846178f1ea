"""Frames are numbered 0, 1, 2, ... per task and read back from any point."""

from __future__ import annotations

import pytest

from orchestrator.events.base import decode_all

from .conftest import AnyEventLog


async def append_tokens(log: AnyEventLog, task_id: str, count: int) -> list[int | None]:
    return [await log.append(task_id, "token", {"t": f"w{i}", "i": i}) for i in range(count)]


async def test_it_numbers_frames_from_zero_without_gaps(event_log: AnyEventLog, task_id: str) -> None:
    # given / when
    first = await event_log.append(task_id, "started", {"pool_id": "p1"})
    tokens = await append_tokens(event_log, task_id, 3)
    last = await event_log.terminate(task_id, "end", {"tokens_out": 3})

    # then
    assert [first, *tokens, last] == [0, 1, 2, 3, 4]


async def test_it_reads_every_frame_after_minus_one(event_log: AnyEventLog, task_id: str) -> None:
    await event_log.append(task_id, "started", {"pool_id": "p1"})
    await append_tokens(event_log, task_id, 2)

    frames = await event_log.read(task_id, after=-1, timeout_s=0)

    assert [(f.seq, f.event, f.data) for f in frames] == [
        (0, "started", {"pool_id": "p1"}),
        (1, "token", {"t": "w0", "i": 0}),
        (2, "token", {"t": "w1", "i": 1}),
    ]


@pytest.mark.parametrize("after", [0, 4, 8, 9, 20])
async def test_it_resumes_after_the_given_seq(event_log: AnyEventLog, task_id: str, after: int) -> None:
    await append_tokens(event_log, task_id, 9)
    await event_log.terminate(task_id, "end", {})

    frames = await event_log.read(task_id, after=after, timeout_s=0)

    assert [f.seq for f in frames] == list(range(after + 1, 10))


async def test_it_keeps_tasks_apart(event_log: AnyEventLog) -> None:
    await event_log.append("t_alice", "token", {"t": "a"})
    await event_log.append("t_bob", "token", {"t": "b"})
    await event_log.append("t_bob", "token", {"t": "c"})

    alice = await event_log.read("t_alice", after=-1, timeout_s=0)
    bob = await event_log.read("t_bob", after=-1, timeout_s=0)

    assert [(f.seq, f.data["t"]) for f in alice] == [(0, "a")]
    assert [(f.seq, f.data["t"]) for f in bob] == [(0, "b"), (1, "c")]


async def test_it_returns_nothing_for_an_unknown_task(event_log: AnyEventLog, task_id: str) -> None:
    assert await event_log.read(task_id, after=-1, timeout_s=0) == []
    assert not await event_log.exists(task_id)


@pytest.mark.parametrize("event", ["end", "error"])
async def test_it_refuses_a_terminal_event_in_append(event_log: AnyEventLog, task_id: str, event: str) -> None:
    with pytest.raises(ValueError, match="terminal"):
        await event_log.append(task_id, event, {})

    assert (await event_log.stats(task_id)).frames == 0


async def test_it_refuses_a_non_terminal_event_in_terminate(event_log: AnyEventLog, task_id: str) -> None:
    with pytest.raises(ValueError, match="not a terminal"):
        await event_log.terminate(task_id, "token", {"t": "x"})

    assert (await event_log.stats(task_id)).frames == 0


async def test_it_stores_json_values(event_log: AnyEventLog, task_id: str) -> None:
    # given: text beyond ASCII, nesting, and a caller that reuses its dict
    data = {"t": "héllo 👋\n", "nested": {"list": [1, 2.5, None, True]}}
    await event_log.append(task_id, "token", data)

    # when
    data["t"] = "changed"
    [frame] = await event_log.read(task_id, after=-1, timeout_s=0)

    # then
    assert frame.data == {"t": "héllo 👋\n", "nested": {"list": [1, 2.5, None, True]}}


async def test_it_refuses_data_that_is_not_json(event_log: AnyEventLog, task_id: str) -> None:
    with pytest.raises(TypeError):
        await event_log.append(task_id, "metrics", {"odd": {1, 2}})

    assert (await event_log.stats(task_id)).frames == 0


async def test_a_runs_frames_decode_in_one_pass_as_one_by_one(event_log: AnyEventLog, task_id: str) -> None:
    # given: the frames of a run as each backend stores them (a transcript decodes them at its end)
    await event_log.append(task_id, "started", {"pool_id": "p1", "queue_position": 0})
    await event_log.append(task_id, "token", {"t": 'quoted " ,[]{} \u2028 héllo 👋', "i": 0})
    await event_log.append(task_id, "metrics", {"prep": {"attempt": 1}, "tokens_per_s": 12.5})
    await event_log.terminate(task_id, "end", {"tokens_out": 1, "tokens_in": None, "canceled": False})

    # when
    frames = await event_log.read(task_id, after=-1, timeout_s=0)

    # then
    assert decode_all(frames) == [frame.data for frame in frames]
    assert len(frames) == 4
