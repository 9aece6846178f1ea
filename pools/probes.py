"""Probing an engine's live state over HTTP (SPEC §8.1).

Used by the node agent for heartbeats and by the beat job that watches
static pools. Each engine kind exposes readiness, slots and models through
different endpoints; `probe_engine` reads them into one `EngineProbe`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger("orchestrator.probes")

PROBE_TIMEOUT = httpx.Timeout(3.0, connect=2.0)


@dataclass
class EngineProbe:
    ready: bool
    error: str = ""
    engine_version: str = ""
    models: list[str] = field(default_factory=list)
    slots_total: int | None = None
    slots_free: int | None = None
    ctx_max: int | None = None


def probe_engine(engine: str, url: str, client: httpx.Client | None = None) -> EngineProbe:
    """Ask the engine at `url` whether it is ready, and what it reports of itself."""
    own_client = client is None
    http = client or httpx.Client(timeout=PROBE_TIMEOUT)
    try:
        prober = _PROBERS.get(engine, _probe_openai)
        return prober(http, url.rstrip("/"))
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return EngineProbe(ready=False, error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        if own_client:
            http.close()


def _get_json(http: httpx.Client, url: str) -> Any:
    response = http.get(url)
    response.raise_for_status()
    return response.json()


def _probe_llamacpp(http: httpx.Client, base: str) -> EngineProbe:
    health = http.get(f"{base}/health")
    if health.status_code != 200:
        return EngineProbe(ready=False, error=f"/health answered {health.status_code}")
    probe = EngineProbe(ready=True)
    props = http.get(f"{base}/props")
    if props.status_code == 200:
        data = props.json()
        settings = data.get("default_generation_settings") or {}
        probe.ctx_max = settings.get("n_ctx")
        probe.slots_total = data.get("total_slots")
        build = data.get("build_info")
        probe.engine_version = str(build) if build else ""
    slots = http.get(f"{base}/slots")
    if slots.status_code == 200 and isinstance(slots.json(), list):
        entries = slots.json()
        probe.slots_total = len(entries)
        probe.slots_free = sum(1 for slot in entries if not slot.get("is_processing"))
    return probe


def _probe_openai(http: httpx.Client, base: str) -> EngineProbe:
    data = _get_json(http, f"{base}/v1/models")
    models = [str(item["id"]) for item in data.get("data", [])]
    return EngineProbe(ready=True, models=models)


def _probe_vllm(http: httpx.Client, base: str) -> EngineProbe:
    health = http.get(f"{base}/health")
    if health.status_code != 200:
        return EngineProbe(ready=False, error=f"/health answered {health.status_code}")
    probe = _probe_openai(http, base)
    version = http.get(f"{base}/version")
    if version.status_code == 200:
        probe.engine_version = str(version.json().get("version", ""))
    return probe


def _probe_tgi(http: httpx.Client, base: str) -> EngineProbe:
    health = http.get(f"{base}/health")
    if health.status_code != 200:
        return EngineProbe(ready=False, error=f"/health answered {health.status_code}")
    info = _get_json(http, f"{base}/info")
    return EngineProbe(
        ready=True,
        engine_version=str(info.get("version", "")),
        models=[str(info["model_id"])] if info.get("model_id") else [],
        ctx_max=info.get("max_input_tokens") or info.get("max_input_length"),
        slots_total=info.get("max_concurrent_requests"),
    )


_PROBERS = {
    "llamacpp": _probe_llamacpp,
    "vllm": _probe_vllm,
    "tgi": _probe_tgi,
    "openai": _probe_openai,
    "triton": _probe_openai,
}
