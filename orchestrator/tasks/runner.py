"""Running one claimed task: engine stream in, event log frames out.

The token path does no database work: frames go to the event log, and the
task row is written only at first token and at the end. A runner ends in
exactly one of: completed, failed, canceled (someone else wrote the terminal
frame), or re-queued (the engine failed before the first token and retries
remain). Whatever happens, its slot lease is released exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from orchestrator.engines import adapter_for
from orchestrator.engines.base import EngineError, EngineRequest, Finished, Token, Vectors
from orchestrator.events import get_event_log
from orchestrator.tasks import finishing
from orchestrator.tasks.claims import Claim
from orchestrator.tasks.lifecycle import WORKER_RESET_RETRY_MS, error_data

logger = logging.getLogger("orchestrator.runner")

# SPEC §3.4: metrics frames at most every 500 ms, never per token.
METRICS_INTERVAL_S = 0.5
# How long after the first token its row is written (see Runner._write_first_token).
FIRST_TOKEN_ROW_DELAY_S = 0.002


@dataclass
class Outcome:
    """How a run ended, as the finishing step needs to know it."""

    kind: str  # completed | failed | canceled | requeue
    tokens_out: int = 0
    tokens_in: int | None = None
    decode_ms: int = 0
    first_token_ms: float | None = None
    finish_reason: str = ""
    error: dict[str, Any] | None = None
    end_data: dict[str, Any] = field(default_factory=dict)


class Runner:
    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.stop_reason: str | None = None
        self.log = get_event_log()

    def request(self) -> EngineRequest:
        claim = self.claim
        return EngineRequest(
            task_id=claim.task_id,
            engine_url=claim.engine_url,
            workload=claim.workload,
            model_ref=claim.model_ref,
            max_tokens=claim.max_tokens,
            prompt=claim.prompt,
            inputs=claim.inputs,
            seed=claim.seed,
            first_token_timeout_s=float(settings.ORCHD_FIRST_TOKEN_TIMEOUT_S),
            idle_timeout_s=float(settings.ORCHD_IDLE_TIMEOUT_S),
        )

    async def run(self) -> Outcome:
        started = time.monotonic()
        try:
            if await self._announce_dispatch():
                outcome = await self._stream(started)
            else:  # ended (canceled, expired) between the claim's commit and now: no engine request
                outcome = Outcome("canceled")
        except asyncio.CancelledError:
            if self.stop_reason is None:
                raise
            if self.stop_reason == "canceled":
                outcome = Outcome("canceled", tokens_out=self._tokens, decode_ms=self._decode_ms())
            else:
                outcome = self._stopped(self.stop_reason, tokens=self._tokens, started=started)
        # From here on the run is being finished: stops no longer cancel it (the dispatcher
        # checks this flag, and the shield outlives a cancel anyway), and a crash below is not
        # finished a second time.
        self.finishing = True
        await asyncio.shield(self._finish(outcome))
        return outcome

    _tokens = 0
    _first_token_at: float | None = None
    _first_token_write: asyncio.Task[None] | None = None
    finishing = False

    async def _finish(self, outcome: Outcome) -> None:
        if self._first_token_write is not None:
            # The row says `running` before it says how the run ended. Whatever befell that
            # write, the run is still finished: its lease and its budget depend on it.
            try:
                await self._first_token_write
            except Exception:
                logger.exception("runner.first_token_write_failed", extra={"task_id": self.claim.task_id})
        await finishing.finish_run(self.claim, outcome, self.log)

    async def _announce_dispatch(self) -> bool:
        """Tell watchers where the task runs; write `started` if the log lost it (a restart).

        False when the task's stream has already ended: a cancel (or an expiry) that came
        between the claim's commit and this run's start, too early for the dispatcher to
        stop a runner it did not have yet. The engine is then never asked.
        """
        claim = self.claim
        where = {"pool_id": claim.pool_id, "node_id": claim.node_id, "engine_version": claim.engine_version}
        if (await self.log.stats(claim.task_id)).frames == 0:
            started = {
                "queue_position": 0,
                "predicted_start_ms": 0,
                "engine": claim.engine,
                "model_ref": claim.model_ref,
            }
            await self.log.append(claim.task_id, "started", {**started, **where})
        prep = {"queue_depth": 0, "prep": {**where, "attempt": claim.attempts}}
        return await self.log.append(claim.task_id, "metrics", prep) is not None

    async def _stream(self, started: float) -> Outcome:
        claim = self.claim
        stream = adapter_for(claim.engine).stream(self.request())
        last_metrics = time.monotonic()
        finished: Finished | None = None
        vectors: Vectors | None = None
        try:
            async for event in stream:
                if isinstance(event, Token):
                    if self._first_token_at is None:
                        self._first_token_at = time.monotonic()
                    if await self.log.append(claim.task_id, "token", {"t": event.text, "i": self._tokens}) is None:
                        return Outcome("canceled", tokens_out=self._tokens)
                    if self._tokens == 0:
                        # Written beside the stream, not before the token: clients see it a DB write sooner.
                        ttft_ms = (self._first_token_at - started) * 1000
                        self._first_token_write = asyncio.create_task(self._write_first_token(ttft_ms))
                    self._tokens += 1
                    if time.monotonic() - last_metrics >= METRICS_INTERVAL_S:
                        last_metrics = time.monotonic()
                        if not await self._metrics_frame():
                            return Outcome("canceled", tokens_out=self._tokens)
                elif isinstance(event, Finished):
                    finished = event
                elif isinstance(event, Vectors):
                    vectors = event
        except EngineError as error:
            return self._failed(error, started)
        finally:
            await stream.aclose()
        return self._completed(finished, vectors, started)

    async def _write_first_token(self, ttft_ms: float) -> None:
        """The row's `running`, once the first token's frame has had time to go out.

        Written at once, its statements (on a worker thread) held the GIL while the
        server was to send the frame: under daphne, whose writes wait for the next
        turn of its loop, the token reached clients 0.6 ms later (docs/performance.md,
        step 8). Nobody waits on the row but the end of the run, which awaits this.
        """
        await asyncio.sleep(FIRST_TOKEN_ROW_DELAY_S)
        await finishing.first_token(self.claim, ttft_ms)

    async def _metrics_frame(self) -> bool:
        elapsed = time.monotonic() - (self._first_token_at or time.monotonic())
        rate = round(self._tokens / elapsed, 1) if elapsed > 0 else 0.0
        data: dict[str, Any] = {"tokens_per_s": rate, **self._budget_left(elapsed)}
        return await self.log.append(self.claim.task_id, "metrics", data) is not None

    def _budget_left(self, decode_s: float) -> dict[str, Any]:
        """Budgets as they stand with this task's output so far (only the limited ones)."""
        left, used = self.claim.budget_left, self._tokens
        data: dict[str, Any] = {}
        if left.tokens is not None:
            data["tokens_budget_remaining"] = max(0, left.tokens - used)
        if left.time_ms is not None:
            data["time_budget_remaining_ms"] = max(0, left.time_ms - int(decode_s * 1000))
        if left.cost is not None:
            spent = self.claim.price_per_token * used
            data["cost_budget_remaining"] = float(left.cost - spent) if left.cost > spent else 0.0
        return data

    def _first_token_ms(self, started: float) -> float | None:
        return (self._first_token_at - started) * 1000 if self._first_token_at else None

    def _decode_ms(self) -> int:
        return int((time.monotonic() - self._first_token_at) * 1000) if self._first_token_at else 0

    def _completed(self, finished: Finished | None, vectors: Vectors | None, started: float) -> Outcome:
        if vectors is not None:
            end: dict[str, Any] = {
                "tokens_out": 0,
                "decode_ms": int((time.monotonic() - started) * 1000),
                "tokens_in": vectors.tokens_in,
                "finish_reason": "stop",
                "canceled": False,
            }
            if vectors.embeddings:
                end["embeddings"] = vectors.embeddings
            if vectors.scores:
                end["scores"] = vectors.scores
            return Outcome(
                "completed", tokens_in=vectors.tokens_in, decode_ms=end["decode_ms"], finish_reason="stop", end_data=end
            )
        reason = finished.finish_reason if finished else "stop"
        if reason == "length" and self.claim.budget_clamped:
            reason = "budget"
        decode_ms = finished.decode_ms if finished and finished.decode_ms is not None else self._decode_ms()
        tokens_in = finished.tokens_in if finished else None
        end = {
            "tokens_out": self._tokens,
            "decode_ms": decode_ms,
            "tokens_in": tokens_in,
            "finish_reason": reason,
            "canceled": False,
        }
        return Outcome(
            "completed",
            tokens_out=self._tokens,
            tokens_in=tokens_in,
            decode_ms=decode_ms,
            first_token_ms=self._first_token_ms(started),
            finish_reason=reason,
            end_data=end,
        )

    def _failed(self, error: EngineError, started: float) -> Outcome:
        retry_ms = WORKER_RESET_RETRY_MS if error.code == "WORKER_RESET" else None
        # SPEC §3.2 retries failures of the pool (refused, 5xx, lost node, no first token in time),
        # not requests the engine refused as invalid (4xx), which another pool would refuse too.
        retriable_here = error.code in ("WORKER_RESET", "DECODE_TIMEOUT")
        if (
            retriable_here
            and error.before_first_token
            and self._tokens == 0
            and self.claim.attempts <= settings.ORCHD_DISPATCH_RETRIES
        ):
            data = error_data(
                error.code, error.message, retry_after_ms=retry_ms, engine=self.claim.engine, pool_id=self.claim.pool_id
            )
            return Outcome("requeue", error=data)
        data = error_data(
            error.code, error.message, retry_after_ms=retry_ms, engine=self.claim.engine, pool_id=self.claim.pool_id
        )
        return Outcome(
            "failed",
            tokens_out=self._tokens,
            decode_ms=self._decode_ms(),
            first_token_ms=self._first_token_ms(started),
            error=data,
        )

    def _stopped(self, reason: str, *, tokens: int, started: float) -> Outcome:
        """The pool went away or its drain deadline passed: retry if nothing was sent yet."""
        message = (
            "The pool's drain deadline passed."
            if reason == "drain"
            else f"The engine's node became unavailable ({reason})."
        )
        data = error_data(
            "WORKER_RESET",
            message,
            retry_after_ms=WORKER_RESET_RETRY_MS,
            engine=self.claim.engine,
            pool_id=self.claim.pool_id,
        )
        if tokens == 0 and self.claim.attempts <= settings.ORCHD_DISPATCH_RETRIES and reason != "drain":
            return Outcome("requeue", error=data)
        if reason == "drain":
            data["policy_label"] = "drain"
        return Outcome(
            "failed",
            tokens_out=tokens,
            decode_ms=self._decode_ms(),
            first_token_ms=self._first_token_ms(started),
            error=data,
        )


async def run_claim(claim: Claim, runner: Runner | None = None) -> Outcome:
    runner = runner or Runner(claim)
    try:
        return await runner.run()
    except Exception:
        logger.exception("runner.crashed", extra={"task_id": claim.task_id, "pool_id": claim.pool_id})
        outcome = Outcome("failed", error=error_data("INTERNAL", "The dispatcher failed while running this task."))
        if not runner.finishing:  # finish_run releases the lease in its own `finally`: never twice
            runner.finishing = True
            await finishing.finish_run(claim, outcome, get_event_log())
        return outcome
