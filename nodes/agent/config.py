"""The node agent's configuration file (TOML or YAML).

Example (TOML)::

    control_plane_url = "http://orchestrator:8080"
    token = "orchd_..."            # or token_env = "ORCHD_NODE_TOKEN"
    node_id = "gpu-1"
    models_dir = "/srv/models"     # purge never deletes outside it

    [[pools]]
    pool_id = "gpu-1-llama"
    engine = "llamacpp"
    engine_url = "http://127.0.0.1:8081"   # an engine already running, or...
    models = ["llama-3-8b"]
    slots = 4
    ctx_max = 8192
    # ...a command the agent starts and restarts for reloads:
    command = "llama-server -m {model_path} --host 127.0.0.1 --port {port} -np {slots} -c {ctx_total}"
    model_paths = { "llama-3-8b" = "llama-3-8b.Q4_K_M.gguf" }
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.ids import id_error, model_id_error

ENGINES = ("llamacpp", "vllm", "tgi", "triton", "openai")


class ConfigError(ValueError):
    """The agent's configuration file is unusable; the message says why."""


@dataclass(frozen=True)
class PoolConfig:
    pool_id: str
    engine: str
    models: tuple[str, ...]
    slots: int
    engine_url: str = ""
    ctx_max: int | None = None
    device_mask: str = ""
    vram_total_bytes: int | None = None
    engine_version: str = ""
    command: str = ""
    model_paths: dict[str, str] = field(default_factory=dict)
    cache_dirs: tuple[str, ...] = ()
    health_timeout_s: float = 120.0

    @property
    def managed(self) -> bool:
        """The agent starts this pool's engine itself (and can reload it)."""
        return bool(self.command)


@dataclass(frozen=True)
class AgentConfig:
    control_plane_url: str
    token: str
    node_id: str
    pools: tuple[PoolConfig, ...]
    machine_id: str = ""
    address: str = ""
    models_dir: Path | None = None
    heartbeat_interval_ms: int | None = None
    max_backoff_s: float = 30.0


def load_config(path: Path) -> AgentConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        raw = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path} is not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a table of settings")
    return parse_config(raw)


def _required(raw: dict[str, Any], key: str, where: str) -> Any:
    if key not in raw or raw[key] in (None, ""):
        raise ConfigError(f"{where}: '{key}' is required")
    return raw[key]


def parse_config(raw: dict[str, Any]) -> AgentConfig:
    token = raw.get("token") or os.environ.get(str(raw.get("token_env", "ORCHD_NODE_TOKEN")), "")
    if not token:
        raise ConfigError("set 'token' (or 'token_env' naming an environment variable that holds it)")
    node_id = str(_required(raw, "node_id", "config"))
    if id_error(node_id):
        raise ConfigError(f"node_id {id_error(node_id)}")
    pools_raw = raw.get("pools") or []
    if not isinstance(pools_raw, list) or not pools_raw:
        raise ConfigError("config: list at least one pool under 'pools'")
    models_dir = raw.get("models_dir")
    return AgentConfig(
        control_plane_url=str(_required(raw, "control_plane_url", "config")).rstrip("/"),
        token=str(token),
        node_id=node_id,
        pools=tuple(_parse_pool(item, index) for index, item in enumerate(pools_raw)),
        machine_id=str(raw.get("machine_id") or socket.gethostname()),
        address=str(raw.get("address", "")),
        models_dir=Path(models_dir).resolve() if models_dir else None,
        heartbeat_interval_ms=raw.get("heartbeat_interval_ms"),
        max_backoff_s=float(raw.get("max_backoff_s", 30.0)),
    )


def _parse_pool(raw: Any, index: int) -> PoolConfig:
    where = f"pools[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    pool_id = str(_required(raw, "pool_id", where))
    engine = str(_required(raw, "engine", where))
    models = tuple(str(model) for model in raw.get("models", []))
    problems = [
        f"pool_id {id_error(pool_id)}" if id_error(pool_id) else None,
        f"engine must be one of {', '.join(ENGINES)}" if engine not in ENGINES else None,
        *(f"model '{m}' {model_id_error(m)}" for m in models if model_id_error(m)),
        "set engine_url or command" if not (raw.get("engine_url") or raw.get("command")) else None,
    ]
    errors = [problem for problem in problems if problem]
    if errors:
        raise ConfigError(f"{where}: " + "; ".join(errors))
    slots = raw.get("slots", raw.get("slots_total", 1))
    if not isinstance(slots, int) or slots < 1:
        raise ConfigError(f"{where}: slots must be at least 1")
    return PoolConfig(
        pool_id=pool_id,
        engine=engine,
        models=models,
        slots=slots,
        engine_url=str(raw.get("engine_url", "")).rstrip("/"),
        ctx_max=raw.get("ctx_max"),
        device_mask=str(raw.get("device_mask", "")),
        vram_total_bytes=raw.get("vram_total_bytes"),
        engine_version=str(raw.get("engine_version", "")),
        command=str(raw.get("command", "")),
        model_paths={str(key): str(value) for key, value in (raw.get("model_paths") or {}).items()},
        cache_dirs=tuple(str(path) for path in raw.get("cache_dirs", [])),
        health_timeout_s=float(raw.get("health_timeout_s", 120.0)),
    )
