"""Placement: which pool runs a task. A pure, deterministic function (SPEC §3.3).

`place()` takes plain values — the request and a snapshot of the pools — and
returns a `Decision` that records every candidate, why each other pool was
filtered out, and the winner. Nothing here reads the database or the clock,
so the same inputs always give the same answer and every rule is testable in
a table. Random placement draws from an RNG seeded by the caller.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Strategy(StrEnum):
    LEAST_LOADED = "least-loaded"
    ROUND_ROBIN = "round-robin"
    RANDOM = "random"


class Mode(StrEnum):
    AUTO = "auto"
    PIN = "pin"
    PREFER = "prefer"


class Outcome(StrEnum):
    PLACED = "placed"
    # A pool could run the task but none has a free slot now: the task waits.
    NO_CAPACITY = "no_capacity"
    # No pool could run it at all (admission answers POOL_UNAVAILABLE/POOL_UNREADY).
    NO_CANDIDATE = "no_candidate"


@dataclass(frozen=True)
class PoolView:
    """What placement needs to know about one pool at one moment."""

    pool_id: str
    node_id: str
    engine: str
    models: frozenset[str]
    slots_total: int
    active_leases: int = 0
    ready: bool = True
    draining: bool = False
    node_online: bool = True
    ctx_max: int | None = None
    device_mask: str = ""
    vram_free_bytes: int | None = None

    @property
    def free_slots(self) -> int:
        # Leases, not the engine's reported slots_free: the report lags a
        # heartbeat behind, while leases change in the same transaction as claims.
        return max(0, self.slots_total - self.active_leases)


@dataclass(frozen=True)
class PlacementRequest:
    model_ref: str
    engine: str
    ctx: int = 1
    mode: Mode = Mode.AUTO
    pin_pool_id: str | None = None
    prefer_pools: tuple[str, ...] = ()
    avoid_pools: tuple[str, ...] = ()
    require_device_mask: str | None = None
    allow_fallback: bool = True
    session_pool_id: str | None = None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    pool_id: str | None
    strategy: Strategy
    candidates: tuple[str, ...]
    filtered: dict[str, str] = field(default_factory=dict)
    pinned: bool = False
    fallback: bool = False

    def log_fields(self) -> dict[str, object]:
        return {
            "outcome": self.outcome.value,
            "winner": self.pool_id,
            "strategy": self.strategy.value,
            "candidates": list(self.candidates),
            "filters": self.filtered,
            "pinned": self.pinned,
            "fallback": self.fallback,
        }


def _static_filter(pool: PoolView, request: PlacementRequest) -> str | None:
    """Why `pool` can never serve this request (ignoring its current load)."""
    checks = (
        (not pool.node_online, "node_not_online"),
        (not pool.ready, "not_ready"),
        (pool.draining, "draining"),
        (pool.engine != request.engine, "engine_mismatch"),
        (request.model_ref not in pool.models, "model_not_served"),
        (pool.ctx_max is not None and pool.ctx_max < request.ctx, "ctx_too_small"),
        (
            request.require_device_mask is not None and pool.device_mask != request.require_device_mask,
            "device_mask_mismatch",
        ),
        (pool.pool_id in request.avoid_pools, "avoided"),
    )
    return next((reason for failed, reason in checks if failed), None)


def eligible_pools(request: PlacementRequest, pools: Sequence[PoolView]) -> tuple[list[PoolView], dict[str, str]]:
    """Pools that could serve the request if they had a free slot, and why the rest can't."""
    filtered: dict[str, str] = {}
    eligible: list[PoolView] = []
    for pool in sorted(pools, key=lambda p: p.pool_id):
        reason = _static_filter(pool, request)
        if reason is None:
            eligible.append(pool)
        else:
            filtered[pool.pool_id] = reason
    return eligible, filtered


def _apply_mode(
    request: PlacementRequest, eligible: list[PoolView], filtered: dict[str, str]
) -> tuple[list[PoolView], bool]:
    """Narrow by pin/prefer; returns the pools in play and whether this is a fallback."""
    if request.mode == Mode.PIN:
        for pool in eligible:
            if pool.pool_id != request.pin_pool_id:
                filtered[pool.pool_id] = "not_pinned"
        return [pool for pool in eligible if pool.pool_id == request.pin_pool_id], False
    if request.mode == Mode.PREFER:
        preferred = [pool for pool in eligible if pool.pool_id in request.prefer_pools and pool.free_slots > 0]
        if preferred:
            for pool in eligible:
                if pool.pool_id not in request.prefer_pools:
                    filtered[pool.pool_id] = "not_preferred"
            return preferred, False
        if not request.allow_fallback:
            for pool in eligible:
                if pool.pool_id not in request.prefer_pools:
                    filtered[pool.pool_id] = "not_preferred"
            return [pool for pool in eligible if pool.pool_id in request.prefer_pools], False
        return eligible, True
    return eligible, False


def _least_loaded_key(pool: PoolView, request: PlacementRequest) -> tuple[int, int, int, str]:
    affinity = 1 if request.session_pool_id is not None and pool.pool_id == request.session_pool_id else 0
    # Sorted ascending, so "more is better" values are negated; pool_id breaks the last tie.
    return (-pool.free_slots, -(pool.vram_free_bytes or 0), -affinity, pool.pool_id)


def place(
    request: PlacementRequest,
    pools: Sequence[PoolView],
    strategy: Strategy = Strategy.LEAST_LOADED,
    *,
    round_robin_offset: int = 0,
    seed: int = 0,
) -> Decision:
    """Choose a pool for `request` among `pools` (see the module docstring)."""
    eligible, filtered = eligible_pools(request, pools)
    in_play, fallback = _apply_mode(request, eligible, filtered)
    pinned = request.mode == Mode.PIN
    with_slot = []
    for pool in in_play:
        if pool.free_slots > 0:
            with_slot.append(pool)
        else:
            filtered[pool.pool_id] = "no_free_slot"
    candidates = tuple(pool.pool_id for pool in with_slot)
    if not with_slot:
        outcome = Outcome.NO_CAPACITY if in_play else Outcome.NO_CANDIDATE
        return Decision(outcome, None, strategy, candidates, filtered, pinned, fallback)
    winner = _choose(with_slot, request, strategy, round_robin_offset, seed)
    return Decision(Outcome.PLACED, winner.pool_id, strategy, candidates, filtered, pinned, fallback)


def _choose(pools: list[PoolView], request: PlacementRequest, strategy: Strategy, offset: int, seed: int) -> PoolView:
    if strategy == Strategy.ROUND_ROBIN:
        return pools[offset % len(pools)]
    if strategy == Strategy.RANDOM:
        return random.Random(seed).choice(pools)  # noqa: S311 - load spreading, not security
    return min(pools, key=lambda pool: _least_loaded_key(pool, request))
