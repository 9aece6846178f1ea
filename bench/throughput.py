"""Relayed tokens/s and CPU time per token, in fixed windows, arms interleaved.

`streams` workers each run generations back to back for the length of a
window; tokens that arrive inside the window are counted, and the CPU time
of the measured process (the web process, the LiteLLM proxy) over the same
window is divided by them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from bench.clients import Arm, Stream, new_session
from bench.harness import Proc
from bench.stats import Estimate, median


@dataclass
class Window:
    tokens_per_s: float
    cpu_us_per_token: float | None  # of the measured process; None for the direct arm
    cpu_share: float | None  # CPU seconds per second of the measured process (1.0 = one core)
    errors: int


@dataclass
class ArmWindows:
    windows: list[Window] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # tokens/s over the direct window of its turn

    def tokens_per_s(self) -> float:
        return median([w.tokens_per_s for w in self.windows])

    def cpu_us_per_token(self) -> float:
        return median([w.cpu_us_per_token for w in self.windows if w.cpu_us_per_token is not None])

    def cpu_share(self) -> float:
        return median([w.cpu_share for w in self.windows if w.cpu_share is not None])

    def kept(self) -> Estimate:
        return Estimate.of(self.ratios)


async def window(
    arm: Arm,
    session: aiohttp.ClientSession,
    proc: Proc | None,
    *,
    streams: int,
    max_tokens: int,
    seconds: float,
    warmup_s: float = 1.0,
) -> Window:
    stop = time.perf_counter() + warmup_s + seconds
    errors = 0
    finished: list[Stream] = []

    async def worker(index: int) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            try:
                finished.append(await arm.run(session, max_tokens, index))
            except (TimeoutError, aiohttp.ClientError, RuntimeError):
                errors += 1
                await asyncio.sleep(0.1)

    workers = [asyncio.create_task(worker(i)) for i in range(streams)]
    await asyncio.sleep(warmup_s)
    start, cpu0 = time.perf_counter(), proc.cpu_s() if proc else 0.0
    await asyncio.sleep(seconds)
    end, cpu1 = time.perf_counter(), proc.cpu_s() if proc else 0.0
    live = [task for task in workers if not task.done()]
    await asyncio.gather(*workers)
    errors += sum(1 for stream in finished if stream.error or not stream.tokens)  # answered, but failed
    # Workers still streaming at the end of the window are counted through `finished` once done.
    tokens = sum(1 for s in finished for t in s.token_times if start <= t < end)
    del live
    rate = tokens / (end - start)
    cpu = cpu1 - cpu0
    return Window(
        tokens_per_s=rate,
        cpu_us_per_token=cpu * 1e6 / tokens if proc and tokens else None,
        cpu_share=cpu / (end - start) if proc else None,
        errors=errors,
    )


async def measure(
    arms: Sequence[tuple[Arm, Proc | None]],
    *,
    streams: int,
    max_tokens: int,
    seconds: float,
    rounds: int,
) -> dict[str, ArmWindows]:
    """Windows of each arm in turn, `rounds` times; `arms[0]` is the reference for `ratios`."""
    results = {arm.name: ArmWindows() for arm, _ in arms}
    async with new_session() as session:
        for turn in range(rounds):
            rates = {}
            order = list(arms[turn % len(arms) :]) + list(arms[: turn % len(arms)])
            for arm, proc in order:
                result = await window(arm, session, proc, streams=streams, max_tokens=max_tokens, seconds=seconds)
                results[arm.name].windows.append(result)
                rates[arm.name] = result.tokens_per_s
            reference = rates[arms[0][0].name]
            for name, rate in rates.items():
                results[name].ratios.append(rate / reference if reference else 0.0)
    return results
