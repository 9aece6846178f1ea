"""The in-process event log: the embedded mode's store (one process, no Redis).

It is called from many threads and many event loops: daphne's loop, and the
fresh loop `async_to_sync` (and the WSGI test client) creates per call. So the
data sits under one `threading.Lock` — which makes an append atomic with
respect to `terminate`, the property cancel rests on — and a blocked reader
waits on a future of its *own* loop, which an appender resolves through that
loop (`call_soon_threadsafe` when it runs elsewhere).

Memory is bounded without a background thread: each log carries a monotonic
deadline, checked on every access, and a full sweep (`prune`) runs at most
every PRUNE_INTERVAL_S as a side effect of the calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .base import UNFINISHED_LOG_MAX_AGE_S, Frame, LogStats, appendable, encode_data, terminal

# Often enough that expired logs don't pile up between sweeps, rarely enough
# that a scan of every log costs nothing next to the appends.
PRUNE_INTERVAL_S = 10.0

_EMPTY = LogStats(frames=0, tokens=0, first_token_ms=None, terminated=False, watchers=0, last_detach_ms=None)


@dataclass
class _TaskLog:
    expires_at: float
    frames: list[Frame] = field(default_factory=list)
    tokens: int = 0
    first_token_ms: int | None = None
    terminated: bool = False
    watchers: int = 0
    last_detach_ms: int | None = None

    def stats(self) -> LogStats:
        return LogStats(
            frames=len(self.frames),
            tokens=self.tokens,
            first_token_ms=self.first_token_ms,
            terminated=self.terminated,
            watchers=self.watchers,
            last_detach_ms=self.last_detach_ms,
        )


class InProcessEventLog:
    """The `EventLog` of one process; safe from any thread and any event loop.

    `clock` (monotonic seconds) only drives expiry; tests pass a fake one.
    """

    def __init__(
        self,
        *,
        max_age_s: float = UNFINISHED_LOG_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._logs: dict[str, _TaskLog] = {}
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._next_prune = clock() + PRUNE_INTERVAL_S

    async def append(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        return self.append_now(task_id, event, data)

    async def terminate(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        return self.terminate_now(task_id, event, data)

    # The same operations for sync code (any thread): nothing here waits, so
    # there is no need for the round trip to an event loop that async_to_sync makes.

    def append_now(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        return self._add(task_id, appendable(event), data)

    def terminate_now(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        return self._add(task_id, terminal(event), data)

    def stats_now(self, task_id: str) -> LogStats:
        with self._lock:
            log = self._live(task_id)
            return log.stats() if log else _EMPTY

    def expire_now(self, task_id: str, ttl_s: int) -> None:
        with self._lock:
            log = self._live(task_id)
            if log is not None:
                log.expires_at = self._clock() + ttl_s

    async def read(self, task_id: str, after: int, timeout_s: float) -> list[Frame]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            with self._lock:
                log = self._live(task_id)
                frames = log.frames[max(after + 1, 0) :] if log else []
                # A terminated log gets nothing new: waiting would only delay the caller.
                if frames or (log is not None and log.terminated) or loop.time() >= deadline:
                    return frames
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.setdefault(task_id, set()).add(waiter)
            # The deadline resolves the waiter as a frame would (then one more look: a frame may
            # have landed as it passed); a plain timer costs half what a timeout scope does.
            timer = loop.call_at(deadline, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._forget_waiter(task_id, waiter)

    async def stats(self, task_id: str) -> LogStats:
        return self.stats_now(task_id)

    async def attach(self, task_id: str) -> None:
        with self._lock:
            self._log_for_write(task_id).watchers += 1

    async def detach(self, task_id: str, now_ms: int) -> None:
        with self._lock:
            log = self._log_for_write(task_id)
            log.watchers = max(0, log.watchers - 1)
            log.last_detach_ms = now_ms

    async def expire(self, task_id: str, ttl_s: int) -> None:
        self.expire_now(task_id, ttl_s)

    async def exists(self, task_id: str) -> bool:
        with self._lock:
            log = self._live(task_id)
            return log is not None and bool(log.frames)

    async def aclose(self) -> None:
        """Nothing to release; here so both backends shut down the same way."""

    def prune(self) -> int:
        """Drop every expired log now; how many were dropped."""
        with self._lock:
            return self._prune_locked(self._clock())

    def _add(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        # Stored as JSON text, as Redis would keep it: non-JSON data fails here, not in
        # a reader; the caller's later changes to `data` don't show; readers send it as is.
        text = encode_data(data)
        now_ms = time.time_ns() // 1_000_000
        with self._lock:
            log = self._log_for_write(task_id)
            if log.terminated:
                return None
            frame = Frame.encoded(len(log.frames), event, text)
            log.frames.append(frame)
            log.expires_at = self._clock() + self._max_age_s
            log.terminated = frame.terminal
            if event == "token":
                log.tokens += 1
                if log.first_token_ms is None:
                    log.first_token_ms = now_ms
            waiters = self._waiters.pop(task_id, set())
        current = _running_loop()
        for waiter in waiters:
            _wake(waiter, current)
        return frame.seq

    def _live(self, task_id: str) -> _TaskLog | None:
        """The task's log unless it has expired (the lock is held)."""
        now = self._clock()
        if now >= self._next_prune:
            self._prune_locked(now)
        log = self._logs.get(task_id)
        if log is not None and log.expires_at <= now:
            del self._logs[task_id]
            return None
        return log

    def _log_for_write(self, task_id: str) -> _TaskLog:
        log = self._live(task_id)
        if log is None:
            log = self._logs[task_id] = _TaskLog(expires_at=self._clock() + self._max_age_s)
        return log

    def _prune_locked(self, now: float) -> int:
        expired = [task_id for task_id, log in self._logs.items() if log.expires_at <= now]
        for task_id in expired:
            del self._logs[task_id]
        self._next_prune = now + PRUNE_INTERVAL_S
        return len(expired)

    def _forget_waiter(self, task_id: str, waiter: asyncio.Future[None]) -> None:
        with self._lock:
            waiters = self._waiters.get(task_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[task_id]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop of this thread, or None in sync code."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wake(waiter: asyncio.Future[None], current: asyncio.AbstractEventLoop | None) -> None:
    """Resolve a reader's future from whichever loop and thread the appender runs in."""
    loop = waiter.get_loop()
    if loop is current:
        _resolve(waiter)
        return
    # A closed loop means its reader is gone: there is nobody left to wake.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_resolve, waiter)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # a reader that timed out or was cancelled has left already
        waiter.set_result(None)
