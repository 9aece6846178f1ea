"""The node agent's main loop: register, heartbeat, reconcile, deregister on exit."""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from nodes.agent.config import AgentConfig
from nodes.agent.control import ControlPlane, ControlPlaneUnavailable, NotRegistered, Refused
from nodes.agent.runtime import PoolRuntime

logger = logging.getLogger("orchestrator.agent")

FIRST_BACKOFF_S = 0.5


class NodeAgent:
    def __init__(self, config: AgentConfig, control: ControlPlane | None = None) -> None:
        self.config = config
        self.control = control or ControlPlane(config.control_plane_url, config.token)
        self.pools = [PoolRuntime.from_config(pool, config.models_dir) for pool in config.pools]
        self.registered = False
        self.interval_s = (config.heartbeat_interval_ms or 10_000) / 1000
        self.failures = 0

    def run(self, stop: threading.Event) -> None:
        for pool in self.pools:
            pool.start_engine()
        try:
            while not stop.is_set():
                stop.wait(self.step())
        finally:
            self.shutdown()

    def step(self) -> float:
        """One register-or-heartbeat round; returns how long to wait before the next."""
        try:
            if not self.registered:
                self.register()
            self.heartbeat()
        except NotRegistered:
            logger.warning("agent.not_registered", extra={"node_id": self.config.node_id})
            self.registered = False
            return 0.0
        except (ControlPlaneUnavailable, Refused) as exc:
            return self.backoff(exc)
        self.failures = 0
        return self.interval_s

    def backoff(self, error: Exception) -> float:
        """Exponential backoff with full jitter, so a fleet does not retry in step."""
        self.failures += 1
        ceiling = min(self.config.max_backoff_s, FIRST_BACKOFF_S * 2 ** (self.failures - 1))
        delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security
        logger.warning("agent.control_plane_error", extra={"error": str(error), "retry_in_s": round(delay, 2)})
        return delay

    def register(self) -> None:
        answer = self.control.register(self.registration())
        if answer.get("node_token"):
            # Operator tokens register; the node then uses its own credential.
            self.control.use_token(str(answer["node_token"]))
        if self.config.heartbeat_interval_ms is None and answer.get("heartbeat_interval_ms"):
            self.interval_s = int(answer["heartbeat_interval_ms"]) / 1000
        self.registered = True
        logger.info("agent.registered", extra={"node_id": self.config.node_id})

    def registration(self) -> dict[str, Any]:
        return {
            "node_id": self.config.node_id,
            "machine_id": self.config.machine_id,
            "address": self.config.address,
            "version": "orchestratord-agent/0.1.0",
            "capabilities": {"gpus": [], "cpu_cores": None, "ram_total_bytes": None},
            "pools": [self._pool_spec(pool) for pool in self.pools],
        }

    def _pool_spec(self, pool: PoolRuntime) -> dict[str, Any]:
        config = pool.config
        return {
            "pool_id": config.pool_id,
            "engine": config.engine,
            "engine_url": pool.engine_url or "http://127.0.0.1:1",
            "engine_version": config.engine_version,
            "models": list(pool.models),
            "slots_total": config.slots,
            "ctx_max": config.ctx_max,
            "device_mask": config.device_mask,
            "vram_total_bytes": config.vram_total_bytes,
        }

    def heartbeat(self) -> None:
        body = {"pools": [pool.report() for pool in self.pools]}
        answer = self.control.heartbeat(self.config.node_id, body)
        if answer.get("next_heartbeat_ms") and self.config.heartbeat_interval_ms is None:
            self.interval_s = int(answer["next_heartbeat_ms"]) / 1000
        desired = {item["pool_id"]: item.get("desired", {}) for item in answer.get("pools", [])}
        for pool in self.pools:
            pool.reconcile(desired.get(pool.config.pool_id, {}))

    def shutdown(self) -> None:
        if self.registered:
            try:
                self.control.deregister(self.config.node_id)
                logger.info("agent.deregistered", extra={"node_id": self.config.node_id})
            except (ControlPlaneUnavailable, NotRegistered, Refused) as exc:
                logger.warning("agent.deregister_failed", extra={"error": str(exc)})
        for pool in self.pools:
            pool.stop_engine()
        self.control.close()
