"""Admission: POST /v2/tasks throughput and latency, closed loop and open loop.

Closed loop: `concurrency` clients each send the next task as soon as the
previous answer arrives. Open loop: tasks are sent at a fixed arrival rate
whatever the server does, over at most `concurrency` connections (the
target's "at 50 concurrency"), and each latency is counted from the moment
the task was *due*, so a server falling behind shows its queueing delay
(at the client, waiting for a connection) instead of slowing the generator
down (no coordinated omission). Without the cap, a server behind the rate
faced thousands of new connections, and measured their setup rather than
admission.

The pool's slots are all taken by long tasks first, so admitted tasks stay
queued: this measures admission (validation, checks, the persisted insert,
the wake-up and the dispatcher's look at the queue), not the engine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from bench.clients import Orchd, new_session
from bench.harness import Proc
from bench.stats import median, percentile


@dataclass
class AdmissionRun:
    mode: str  # closed | open
    offered_per_s: float | None  # open loop: the arrival rate
    tasks_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_share: float
    connections: int | None = None  # at most this many at once (None: as many as the rate needed)


def _summary(
    mode: str, rate: float | None, latencies: list[float], errors: int, elapsed: float, cpu: float, connections: int
) -> AdmissionRun:
    return AdmissionRun(
        mode,
        rate,
        len(latencies) / elapsed,
        median(latencies),
        percentile(latencies, 99),
        errors,
        cpu / elapsed,
        connections,
    )


async def _post(arm: Orchd, session: aiohttp.ClientSession, index: int) -> bool:
    try:
        await arm.admit(session, 16, index)
    except (aiohttp.ClientError, RuntimeError):
        return False
    return True


async def closed_loop(arm: Orchd, proc: Proc, *, concurrency: int, seconds: float) -> AdmissionRun:
    latencies: list[float] = []
    errors = 0
    async with new_session(limit=concurrency) as session:
        await asyncio.gather(*(_post(arm, session, i) for i in range(concurrency)))  # warm up
        stop = time.perf_counter() + seconds

        async def client(index: int) -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                started = time.perf_counter()
                if await _post(arm, session, index):
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1

        started, cpu0 = time.perf_counter(), proc.cpu_s()
        await asyncio.gather(*(client(i) for i in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, proc.cpu_s() - cpu0
    return _summary("closed", None, latencies, errors, elapsed, cpu, concurrency)


async def open_loop(arm: Orchd, proc: Proc, *, rate: float, seconds: float, concurrency: int = 50) -> AdmissionRun:
    latencies: list[float] = []
    errors = 0
    async with new_session(limit=concurrency) as session:
        await asyncio.gather(*(_post(arm, session, i) for i in range(20)))  # warm up

        async def one(index: int, due: float) -> None:
            nonlocal errors
            if await _post(arm, session, index):
                latencies.append((time.perf_counter() - due) * 1000)
            else:
                errors += 1

        count = int(rate * seconds)
        started, cpu0 = time.perf_counter(), proc.cpu_s()
        pending = []
        for index in range(count):
            due = started + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one(index, due)))
        await asyncio.gather(*pending)
        elapsed, cpu = time.perf_counter() - started, proc.cpu_s() - cpu0
    return _summary("open", rate, latencies, errors, elapsed, cpu, concurrency)


async def occupy_slots(arm: Orchd, slots: int) -> None:
    """Start `slots` tasks that outlast the benchmark, so later tasks stay queued."""
    async with new_session() as session:
        for index in range(slots):
            await arm.admit(session, 50_000, index)
