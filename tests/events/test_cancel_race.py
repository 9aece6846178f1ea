"""The property cancel rests on: whoever writes the terminal frame first wins, and
no append lands after it — however many appenders race it, from however many
connections, threads and event loops."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .conftest import AnyEventLog, run_in_own_loop

Appended = dict[tuple[int, int], int | None]  # (appender, i) -> the seq append returned

# Appenders go on until refused, so each of them races the terminal frame; the
# cap only stops a broken log from looping forever.
MAX_APPENDS = 20_000


async def appender(log: AnyEventLog, task_id: str, who: int, results: Appended) -> None:
    for i in range(MAX_APPENDS):
        seq = results[(who, i)] = await log.append(task_id, "token", {"who": who, "i": i})
        if seq is None:
            return
        await asyncio.sleep(0)  # in-process appends never yield by themselves


async def terminate_when(log: AnyEventLog, task_id: str, frames: int) -> int | None:
    """Write the terminal frame as soon as the log holds `frames` frames."""
    # read returns once frame `frames - 1` exists, or at once when another terminator won
    await log.read(task_id, after=frames - 2, timeout_s=5)
    return await log.terminate(task_id, "end", {"canceled": True, "finish_reason": "canceled"})


async def assert_race_free(log: AnyEventLog, task_id: str, results: Appended, terminal_seqs: list[int | None]) -> None:
    frames = await log.read(task_id, after=-1, timeout_s=0)
    # dense seqs, and one terminal frame, the last
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert [f.terminal for f in frames].count(True) == 1
    assert frames[-1].terminal
    # one terminator won, with the terminal frame's seq
    assert sorted(terminal_seqs, key=lambda seq: seq is None) == [frames[-1].seq] + [None] * (len(terminal_seqs) - 1)
    # an append is in the log, at its seq, exactly when it returned that seq
    logged = {(f.data["who"], f.data["i"]): f.seq for f in frames[:-1]}
    accepted = {key: seq for key, seq in results.items() if seq is not None}
    assert logged == accepted
    # the race was real: appends were accepted, and every appender ran into the refusal
    assert accepted
    assert {who for (who, _), seq in results.items() if seq is None} == {who for who, _ in results}
    stats = await log.stats(task_id)
    assert (stats.frames, stats.tokens, stats.terminated) == (len(frames), len(accepted), True)


async def test_no_append_follows_the_terminal_frame(make_log: Callable[[], AnyEventLog], task_id: str) -> None:
    # given: 20 appenders over two handles (two Redis clients), three terminators
    handles = [make_log(), make_log()]
    results: Appended = {}
    appenders = [appender(handles[who % 2], task_id, who, results) for who in range(20)]
    terminators = [terminate_when(handles[n % 2], task_id, frames=1000 + n) for n in range(3)]

    # when
    *_, first, second, third = await asyncio.gather(*appenders, *terminators)

    # then
    await assert_race_free(handles[0], task_id, results, [first, second, third])


async def test_no_append_follows_the_terminal_frame_across_threads(
    make_log: Callable[[], AnyEventLog], task_id: str
) -> None:
    # given: appenders in 8 threads, each in its own event loop (and Redis client)
    log = make_log()
    results: Appended = {}
    start = threading.Barrier(9, timeout=10)

    def run_appender(who: int) -> None:
        start.wait()
        run_in_own_loop(log, lambda: appender(log, task_id, who, results))

    # when: the terminal frame is written from the test's loop, mid-stream
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=8) as threads:  # leaving it joins them, whatever happened
        appenders = [loop.run_in_executor(threads, run_appender, who) for who in range(8)]
        await asyncio.to_thread(start.wait)
        terminal, *_ = await asyncio.gather(terminate_when(log, task_id, frames=800), *appenders)

    # then
    await assert_race_free(log, task_id, results, [terminal])
