"""The dispatcher: one per web process, never waiting for clients (ARCHITECTURE.md).

It claims queued tasks as soon as a placed pool has a free slot and runs
each claim as an asyncio task. It reacts at once to wake-ups (a task
admitted, a slot freed, a cancel, pools lost) and sweeps every second as the
safety net: queued deadlines, lost pools and drain deadlines of its own runs,
abandoned tasks, heartbeats of its own and recovery of runs orphaned by dead
processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from orchestrator.tasks import notify, recovery, tally
from orchestrator.tasks.abandonment import find_abandoned
from orchestrator.tasks.claims import Claim, claim_tasks
from orchestrator.tasks.lifecycle import acancel_task, aexpire_overdue_tasks, asettle_ended_unrun
from orchestrator.tasks.runner import Runner, run_claim

logger = logging.getLogger("orchestrator.dispatch")

SWEEP_INTERVAL_S = 1.0
HEARTBEAT_INTERVAL_S = 5.0


class Dispatcher:
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        # At most 40 + 1 + 7 + 1 + 8 characters: fits Task.owner (64) for any host name.
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.loop = loop
        self._context = contextvars.copy_context()
        self.runners: dict[str, tuple[Runner, asyncio.Task[Any]]] = {}
        self.wake = asyncio.Event()
        self.stopping = False
        # True once this owner's heartbeat row is written, while `run` goes on: only then may
        # admission lease for it (a run of an owner nobody sees alive would be recovered).
        self.beating = False
        self.round_robin = 0
        self._background: set[asyncio.Task[Any]] = set()

    # --- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._context = contextvars.copy_context()
        notify.register_local(loop, self.on_message)
        listener = asyncio.create_task(self._listen())
        logger.info("dispatcher.started", extra={"owner": self.owner})
        last_heartbeat = last_sweep = 0.0
        try:
            while not self.stopping:
                now = loop.time()
                if now - last_heartbeat >= HEARTBEAT_INTERVAL_S:
                    last_heartbeat = now
                    await self._guard(self._beat())
                    await self._guard(recovery.arecover_orphans(self.owner))
                await self._guard(self._dispatch())
                if now - last_sweep >= SWEEP_INTERVAL_S:
                    last_sweep = now
                    await self._guard(self._sweep())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=SWEEP_INTERVAL_S)
                self.wake.clear()
        finally:
            self.beating = False
            notify.unregister_local(self.on_message)
            listener.cancel()

    async def stop(self, grace_s: float = 10.0) -> None:
        self.stopping = True
        self.wake.set()
        tasks = [task for _, task in self.runners.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)

    async def _beat(self) -> None:
        self.beating = False  # until this heartbeat is written: a failed one may mean others see us dead
        await recovery.aheartbeat(self.owner)
        self.beating = True

    async def _guard(self, work: Any) -> None:
        try:
            await work
        except Exception:
            logger.exception("dispatcher.step_failed", extra={"owner": self.owner})

    # --- messages ----------------------------------------------------------------------

    def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("kind")
        if kind == "cancel":
            self.stop_runner(str(message.get("task_id")), "canceled")
        self.wake.set()

    async def _listen(self) -> None:
        """Receive broadcasts from other processes (a shared channel layer only)."""
        layer = notify.shared_layer()
        if layer is None:
            return
        channel = await layer.new_channel()
        await layer.group_add(notify.GROUP, channel)
        while True:
            try:
                message = notify.from_elsewhere(await layer.receive(channel))
                if message is not None:
                    self.on_message(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("dispatcher.listen_failed", exc_info=True)
                await asyncio.sleep(1.0)

    # --- work --------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        claims = await sync_to_async(claim_tasks)(self.owner, timezone.now(), self.round_robin)
        self.round_robin += len(claims)
        for claim in claims:
            self._start(claim)

    def start_threadsafe(self, claim: Claim) -> None:
        """Run a claim made elsewhere (admission's fast path, on the DB thread) on this loop.

        In the dispatcher's own context, not the caller's: a request thread's context
        holds asgiref's executor for that request, gone once the request ends.
        """
        assert self.loop is not None  # noqa: S101 - only running dispatchers are handed claims
        self.loop.call_soon_threadsafe(self._start, claim, context=self._context)

    def next_round_robin(self) -> int:
        offset, self.round_robin = self.round_robin, self.round_robin + 1
        return offset

    def _start(self, claim: Claim) -> None:
        runner = Runner(claim)
        task = asyncio.create_task(run_claim(claim, runner), name=f"task-{claim.task_id}")
        self.runners[claim.task_id] = (runner, task)
        task.add_done_callback(lambda done: self._forget(claim.task_id, done))

    def _forget(self, task_id: str, done: asyncio.Task[Any]) -> None:
        # The same task may have been re-queued and claimed again by now: keep the newer run.
        entry = self.runners.get(task_id)
        if entry is not None and entry[1] is done:
            del self.runners[task_id]

    def stop_runner(self, task_id: str, reason: str) -> bool:
        entry = self.runners.get(task_id)
        if entry is None:
            return False
        runner, task = entry
        if runner.stop_reason is None and not runner.finishing:
            runner.stop_reason = reason
            task.cancel()
        return True

    async def _sweep(self) -> None:
        now = timezone.now()
        # Each on its own: a failure of one skips none of the others.
        await self._guard(tally.afold())  # PostgreSQL: the queue's deltas into its tally, keeping counts cheap
        await self._guard(asettle_ended_unrun(now))
        await aexpire_overdue_tasks(now)
        running = {task_id: runner.claim.pool_id for task_id, (runner, _) in self.runners.items()}
        for task_id, reason in (await recovery.alost_runs(running, now)).items():
            self.stop_runner(task_id, reason)
        for task_id in await find_abandoned(list(running), now):
            await acancel_task(task_id, "abandoned")


_dispatchers: dict[int, Dispatcher] = {}


def ensure_started() -> Dispatcher:
    """Start this process's dispatcher in the running event loop (idempotent)."""
    loop = asyncio.get_running_loop()
    dispatcher = _dispatchers.get(id(loop))
    if dispatcher is None:
        dispatcher = Dispatcher(loop)
        _dispatchers[id(loop)] = dispatcher
        task = loop.create_task(dispatcher.run(), name="orchd-dispatcher")
        dispatcher._background.add(task)
    return dispatcher


def running_dispatcher() -> Dispatcher | None:
    try:
        return _dispatchers.get(id(asyncio.get_running_loop()))
    except RuntimeError:
        return None


def local_dispatcher() -> Dispatcher | None:
    """A running dispatcher of this process, from any thread; None when none runs."""
    for dispatcher in list(_dispatchers.values()):
        loop = dispatcher.loop
        if dispatcher.beating and not dispatcher.stopping and loop is not None and loop.is_running():
            return dispatcher
    return None
