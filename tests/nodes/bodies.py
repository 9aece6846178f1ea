"""Request bodies for node tests."""

from typing import Any


def pool_spec(pool_id: str = "p1", **overrides: Any) -> dict[str, Any]:
    return {
        "pool_id": pool_id,
        "engine": "llamacpp",
        "engine_url": "http://127.0.0.1:9001",
        "engine_version": "b4000",
        "models": ["llama-3-8b"],
        "slots_total": 4,
        "ctx_max": 8192,
        "device_mask": "0",
        "vram_total_bytes": 24 * 2**30,
        **overrides,
    }


def registration(node_id: Any = "gpu-1", pools: Any = None, **overrides: Any) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "machine_id": f"machine-{node_id}",
        "address": "10.0.0.5",
        "version": "0.1.0",
        "capabilities": {
            "gpus": [{"device_id": 0, "name": "RTX 4090", "vram_total_bytes": 24 * 2**30, "compute_capability": "8.9"}],
            "cpu_cores": 16,
            "ram_total_bytes": 64 * 2**30,
        },
        "pools": [pool_spec()] if pools is None else pools,
        **overrides,
    }


def report(pool_id: str = "p1", **overrides: Any) -> dict[str, Any]:
    return {
        "pool_id": pool_id,
        "ready": True,
        "draining": False,
        "slots_free": 4,
        "slots_total": 4,
        "vram_free_bytes": 10 * 2**30,
        "models": ["llama-3-8b"],
        "engine_version": "b4000",
        "last_error": "",
        **overrides,
    }


def heartbeat(*reports: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": 1_700_000_000_000, "pools": list(reports) or [report()]}
