"""Many SSE streams held at once: memory per stream and the gaps between tokens.

Streams are opened in waves (admit + attach), then held while the engine
paces tokens at a fixed interval. The web process's resident memory is read
before the first wave and again with every stream open; the difference over
the number of streams is the memory per stream. Every token's arrival time
is kept, and the gaps inside the steady window (all streams open) are
compared with the engine's token interval: a stall shows up as a gap many
times the interval.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass

from bench.clients import Arm, Stream, new_session
from bench.harness import Proc
from bench.stats import median, percentile

# Streams opened at once while ramping up.
WAVE = 50


@dataclass
class HeldStreams:
    streams: int
    opened: int
    errors: int
    rss_before_mb: float
    rss_held_mb: float
    kb_per_stream: float
    interval_ms: float
    gap_p50_ms: float
    gap_p99_ms: float
    gap_max_ms: float
    ramp_s: float
    cpu_share: float
    failures: dict[str, int]


async def hold(
    arm: Arm, proc: Proc, *, streams: int, tokens_per_s: float, hold_s: float, baseline_streams: int = 20
) -> HeldStreams:
    interval_ms = 1000 / tokens_per_s
    # Long enough to outlast the ramp and the steady window.
    max_tokens = int((hold_s + 60) * tokens_per_s)
    async with new_session() as session:
        # A few streams first, so the baseline includes warmed-up code paths and connection pools.
        warm = await asyncio.gather(*(arm.run(session, 3, i) for i in range(baseline_streams)))
        del warm
        await asyncio.sleep(1.0)
        rss_before = proc.rss_bytes()
        results: list[Stream | BaseException] = []
        tasks: list[asyncio.Task[Stream]] = []
        ramp_started = time.perf_counter()
        for first in range(0, streams, WAVE):
            wave = [asyncio.create_task(arm.run(session, max_tokens, i)) for i in range(first, first + WAVE)]
            tasks.extend(wave)
            await asyncio.sleep(0.25)
        await _all_streaming(arm, tasks, timeout_s=60)
        ramp_s = time.perf_counter() - ramp_started
        window_start, cpu0 = time.perf_counter(), proc.cpu_s()
        await asyncio.sleep(hold_s)
        rss_held = proc.rss_bytes()
        window_end, cpu1 = time.perf_counter(), proc.cpu_s()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    ok = [r for r in results if isinstance(r, Stream) and r.error is None]
    failures = collections.Counter(repr(r)[:120] for r in results if isinstance(r, BaseException))
    failures.update(r.error for r in results if isinstance(r, Stream) and r.error is not None)
    gaps = [
        (b - a) * 1000
        for s in ok
        for a, b in zip(s.token_times, s.token_times[1:], strict=False)
        if window_start <= b <= window_end
    ]
    return HeldStreams(
        streams=streams,
        opened=len(ok),
        errors=len(results) - len(ok),
        rss_before_mb=rss_before / 2**20,
        rss_held_mb=rss_held / 2**20,
        kb_per_stream=(rss_held - rss_before) / 1024 / streams,
        interval_ms=interval_ms,
        gap_p50_ms=median(gaps),
        gap_p99_ms=percentile(gaps, 99),
        gap_max_ms=max(gaps) if gaps else float("nan"),
        ramp_s=ramp_s,
        cpu_share=(cpu1 - cpu0) / (window_end - window_start),
        failures=dict(failures.most_common(5)),
    )


async def _all_streaming(arm: Arm, tasks: list[asyncio.Task[Stream]], timeout_s: float) -> None:
    """Wait until every stream has its first token (or has failed)."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if arm.live.count >= len(tasks):
            return
        if all(task.done() for task in tasks):
            return
        await asyncio.sleep(0.2)
