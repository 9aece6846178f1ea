"""The engine's state: slots, counters, and the paced token schedule of one generation."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.fake_engine.config import EngineConfig, Fault, faults_in_prompt
from orchestrator.fake_engine.text import count_prompt_tokens, split_pieces, take_pieces

Finish = Literal["length", "stop"]


class Busy(Exception):
    """Every slot is taken and the engine was told to refuse (`--busy 503`) rather than queue."""


@dataclass
class Stats:
    """Counters behind `GET /_fake/stats`; tests assert on them."""

    active: int = 0
    max_active_seen: int = 0
    requests: int = 0
    completed: int = 0
    client_disconnects: int = 0
    queued: int = 0
    rejected: int = 0
    aborted: int = 0

    def reset(self) -> None:
        """Zero the counters; `active` and `queued` describe the present, so they stay."""
        live = (self.active, self.queued)
        for f in dataclasses.fields(self):
            setattr(self, f.name, 0)
        self.active, self.queued = live
        self.max_active_seen = self.active


@dataclass(frozen=True)
class Plan:
    """One generation request, reduced to what the fake model needs."""

    prompt: str
    prompt_tokens: int
    pieces: tuple[str, ...]
    finish: Finish
    seed: int | None
    stream: bool
    fault: Fault

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass
class Run:
    """A generation holding a slot, with the timings the engines report at the end."""

    slot: int
    started: float
    first_token_at: float | None = None
    last_token_at: float | None = None
    sent: int = 0
    aborted: bool = False

    @property
    def prompt_ms(self) -> float:
        return ((self.first_token_at or self.started) - self.started) * 1000

    @property
    def predicted_ms(self) -> float:
        if self.first_token_at is None or self.last_token_at is None:
            return 0.0
        return (self.last_token_at - self.first_token_at) * 1000


class Slots:
    """At most N generations at once, each on a numbered slot (llama.cpp's `/slots` shows them)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._free = list(range(count))
        self._semaphore = asyncio.Semaphore(count)
        self.tasks: dict[int, int] = {}

    def full(self) -> bool:
        return self._semaphore.locked()

    async def acquire(self) -> int:
        await self._semaphore.acquire()
        return self._free.pop(0)

    def release(self, slot: int) -> None:
        self.tasks.pop(slot, None)
        self._free.append(slot)
        self._free.sort()  # an idle engine always starts on slot 0, which keeps /slots predictable
        self._semaphore.release()


class FakeEngine:
    """One engine process: configuration, slots, counters, and the token schedule."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.pieces = split_pieces(config.text)
        self.stats = Stats()
        self.slots = Slots(config.slots)
        self.ready_at = time.monotonic() + config.load_ms / 1000
        self._task_ids = 0
        self._generations: set[asyncio.Task[Any]] = set()

    def loading(self) -> bool:
        return time.monotonic() < self.ready_at

    def plan(self, prompt: str, max_tokens: int | None, seed: int | None, stream: bool) -> Plan:
        """Decide the whole output up front; raises FaultSyntaxError for a bad marker."""
        prompt, fault = faults_in_prompt(prompt, self.config.fault)
        prompt_tokens = count_prompt_tokens(prompt)
        limit = self.config.max_tokens_default if max_tokens is None or max_tokens < 0 else max_tokens
        # Like llama-server, generation ends with "length" when the context is full.
        limit = min(limit, max(self.config.ctx_size - prompt_tokens, 0))
        stop_after = self.config.stop_after
        finish: Finish = "stop" if stop_after is not None and limit > stop_after else "length"
        count = stop_after if finish == "stop" and stop_after is not None else limit
        seed = seed if seed is not None and seed >= 0 else None  # -1 means "random" to the engines
        pieces = tuple(take_pieces(self.pieces, seed, count))
        return Plan(prompt, prompt_tokens, pieces, finish, seed, stream, fault)

    @asynccontextmanager
    async def occupy(self) -> AsyncIterator[Run]:
        """Hold a slot for one generation, queueing or refusing per `--busy`, and count the outcome.

        A client that goes away (aiohttp cancels the handler, or a write fails)
        is counted and its slot freed at once, queued or not.
        """
        if self.config.busy == "503" and self.slots.full():
            self.stats.rejected += 1
            raise Busy
        task = asyncio.current_task()
        if task is not None:
            self._generations.add(task)
        run: Run | None = None
        try:
            run = await self._claim_slot()
            yield run
            self.stats.completed += 1
        except (asyncio.CancelledError, ConnectionError):
            if run is not None and run.aborted:
                self.stats.aborted += 1
            else:
                self.stats.client_disconnects += 1
            raise
        finally:
            if task is not None:
                self._generations.discard(task)
            if run is not None:
                self._release(run)

    async def _claim_slot(self) -> Run:
        self.stats.queued += 1
        try:
            slot = await self.slots.acquire()
        finally:
            self.stats.queued -= 1
        self._task_ids += 1
        self.slots.tasks[slot] = self._task_ids
        self.stats.active += 1
        self.stats.max_active_seen = max(self.stats.max_active_seen, self.stats.active)
        return Run(slot=slot, started=time.monotonic())

    def _release(self, run: Run) -> None:
        self.stats.active -= 1
        self.slots.release(run.slot)

    def abort_all(self) -> None:
        """Cancel every generation, queued or running: the engine is shutting down."""
        for task in self._generations:
            task.cancel()

    async def tokens(self, plan: Plan, run: Run) -> AsyncIterator[tuple[int, str]]:
        """Yield (index, text) on a monotonic schedule: first after TTFT, then one per 1/rate seconds.

        Deadlines are computed from the start, not from the previous token, so
        slow writes or event-loop hiccups do not accumulate into drift.
        """
        ttft_s = (plan.fault.ttft_ms if plan.fault.ttft_ms is not None else self.config.ttft_ms) / 1000
        rate = plan.fault.tps if plan.fault.tps is not None else self.config.tokens_per_s
        gap_s = 1 / rate if rate > 0 else 0.0
        for index, piece in enumerate(plan.pieces):
            delay = run.started + ttft_s + index * gap_s - time.monotonic()
            # Even at full speed, let other generations (and disconnect callbacks) run.
            await asyncio.sleep(max(delay, 0))
            now = time.monotonic()
            if run.first_token_at is None:
                run.first_token_at = now
            run.last_token_at = now
            yield index, piece
