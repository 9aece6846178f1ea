"""What the fleet can do right now, built from the live pools (SPEC §10)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, TypedDict

from django.conf import settings

from pools.models import Engine, Pool

API_VERSION = "2.0.0"

# Workloads each adapter can run against its engine's HTTP API (SPEC §11).
WORKLOADS: dict[str, list[str]] = {
    Engine.LLAMACPP: ["completion", "embedding"],
    Engine.VLLM: ["completion", "embedding"],
    Engine.OPENAI: ["completion", "embedding"],
    Engine.TRITON: ["completion", "embedding"],
    Engine.TGI: ["completion"],
}
FEATURES = ["sse", "sse_resume", "cancel", "seed", "priorities", "placement_pin", "placement_prefer"]


class EngineCapability(TypedDict):
    engine: str
    engine_versions: list[str]
    ctx_max: int
    max_tokens_out: int
    supported_workloads: list[str]
    concurrency: int
    pools: list[str]
    features: list[str]
    rate_limits: dict[str, Any]


def capabilities() -> dict[str, Any]:
    by_engine: dict[str, list[Pool]] = defaultdict(list)
    for pool in Pool.objects.on_online_nodes().order_by("id"):
        by_engine[pool.engine].append(pool)
    engines = [_engine_capability(engine, pools) for engine, pools in sorted(by_engine.items())]
    return {"api_version": API_VERSION, "engines": engines}


def _engine_capability(engine: str, pools: list[Pool]) -> EngineCapability:
    ctx_values = [pool.ctx_max for pool in pools if pool.ctx_max]
    return {
        "engine": engine,
        "engine_versions": sorted({pool.engine_version for pool in pools if pool.engine_version}),
        "ctx_max": max(ctx_values) if ctx_values else settings.ORCHD_CTX_MAX,
        "max_tokens_out": settings.ORCHD_MAX_TOKENS_MAX,
        "supported_workloads": WORKLOADS.get(engine, ["completion"]),
        "concurrency": sum(pool.slots_total for pool in pools),
        "pools": [pool.id for pool in pools],
        "features": FEATURES,
        "rate_limits": {
            "admission_capacity": settings.ORCHD_ADMISSION_CAPACITY,
            "admission_policy": settings.ORCHD_ADMISSION_POLICY,
        },
    }


def version() -> dict[str, str]:
    return {
        "api_version": API_VERSION,
        "build_commit": settings.ORCHD_BUILD_COMMIT,
        "build_time": settings.ORCHD_BUILD_TIME,
        "version": settings.ORCHD_VERSION,
    }
