"""TTFT added over calling the engine directly, paired and interleaved.

One *run* of an arm is `concurrency` streams started together; its value is
the median TTFT of those streams (at 1 stream, that stream's TTFT). The arms
run in turn (direct, orchestratord, LiteLLM, rotating which goes first), so
slow drifts of the machine hit every arm alike; each arm's added TTFT is the
median of its run minus the direct run of the same turn, with a bootstrap
95% CI, over `rounds` rounds of `turns` turns.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from bench.clients import Arm, Stream, new_session
from bench.stats import Estimate, median, percentile

# Enough tokens that a stream is a real stream, few enough that runs are quick.
MAX_TOKENS = 8


@dataclass
class ArmResult:
    runs: list[float] = field(default_factory=list)  # median TTFT of each run
    ttfts: list[float] = field(default_factory=list)  # every stream's TTFT
    diffs: list[float] = field(default_factory=list)  # run minus the direct run of its turn
    round_medians: list[float] = field(default_factory=list)  # median diff of each round
    errors: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # what each failed stream showed, counted

    def added(self) -> Estimate:
        return Estimate.of(self.diffs)

    def p50(self) -> float:
        return median(self.ttfts)

    def p95(self) -> float:
        return percentile(self.ttfts, 95)


async def one_run(arm: Arm, session: aiohttp.ClientSession, concurrency: int, result: ArmResult) -> float:
    streams = await asyncio.gather(
        *(arm.run(session, MAX_TOKENS, index) for index in range(concurrency)), return_exceptions=True
    )
    ttfts = []
    for stream in streams:
        if isinstance(stream, BaseException) or stream.ttft_ms is None or stream.error:
            result.errors += 1
            result.failures[_failure(stream)] += 1
            continue
        ttfts.append(stream.ttft_ms)
    result.ttfts.extend(ttfts)
    return median(ttfts)


def _failure(stream: Stream | BaseException) -> str:
    """Why a failed stream gave no TTFT, in a line: its exception, or its error frame's data."""
    why = f"{type(stream).__name__}: {stream}" if isinstance(stream, BaseException) else stream.error
    return " ".join((why or "ended without a token").split())[:200]  # on one line, for the report's list


async def measure(
    arms: Sequence[Arm], *, concurrency: int, rounds: int = 5, turns: int = 12, warmup: int = 3
) -> dict[str, ArmResult]:
    """`arms[0]` is the direct arm every other is compared with."""
    results = {arm.name: ArmResult() for arm in arms}
    async with new_session() as session:
        for _ in range(warmup):
            for arm in arms:
                await one_run(arm, session, concurrency, ArmResult())
        for _ in range(rounds):
            marks = {name: len(result.diffs) for name, result in results.items()}
            for turn in range(turns):
                order = list(arms[turn % len(arms) :]) + list(arms[: turn % len(arms)])
                values = {}
                for arm in order:
                    values[arm.name] = await one_run(arm, session, concurrency, results[arm.name])
                    results[arm.name].runs.append(values[arm.name])
                    await asyncio.sleep(0.05)  # let the previous run's connections settle
                for name, value in values.items():
                    results[name].diffs.append(value - values[arms[0].name])
            for name, result in results.items():
                result.round_medians.append(median(result.diffs[marks[name] :]))
    return results
