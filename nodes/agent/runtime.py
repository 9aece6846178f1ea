"""What the agent knows about one of its pools, and the work that changes it."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.agent.config import PoolConfig
from nodes.agent.engine import EngineProcess, EngineStartError, resolve_model_path
from pools.probes import probe_engine

logger = logging.getLogger("orchestrator.agent")

# After a reload switches engines, the old one keeps running this long at most
# so streams already on it can finish; the control plane moves new tasks to the
# new URL at the next heartbeat.
OLD_ENGINE_GRACE_S = 30.0


@dataclass
class PoolRuntime:
    config: PoolConfig
    models_dir: Path | None
    engine_url: str = ""
    models: tuple[str, ...] = ()
    process: EngineProcess | None = None
    draining: bool = False
    engine_purged: bool = False
    last_error: str = ""
    purged_id: str | None = None
    failed_target: str | None = None
    busy: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_config(cls, config: PoolConfig, models_dir: Path | None) -> PoolRuntime:
        return cls(config=config, models_dir=models_dir, engine_url=config.engine_url, models=config.models)

    # --- engine lifecycle ---------------------------------------------------------

    def start_engine(self) -> None:
        """Start a managed engine with the first configured model."""
        if not self.config.managed or not self.models:
            return
        engine = EngineProcess(self.config, self.models[0], self.models_dir)
        try:
            engine.start_healthy()
        except EngineStartError as exc:
            self.last_error = f"engine start failed: {exc}"
            logger.error("engine.start_failed", extra={"pool_id": self.config.pool_id, "error": str(exc)})
            return
        self.process, self.engine_url = engine, engine.url

    def stop_engine(self) -> None:
        if self.process is not None:
            self.process.stop()

    def report(self) -> dict[str, Any]:
        """This pool's part of a heartbeat, probed from the engine now."""
        if self.engine_purged or not self.engine_url:
            return self._report(ready=False, error=self.last_error or "engine not running")
        probe = probe_engine(self.config.engine, self.engine_url)
        body = self._report(ready=probe.ready, error=self.last_error or probe.error)
        body.update(
            slots_free=probe.slots_free if probe.slots_free is not None else None,
            slots_total=probe.slots_total or self.config.slots,
            engine_version=probe.engine_version or self.config.engine_version or None,
        )
        return body

    def _report(self, *, ready: bool, error: str) -> dict[str, Any]:
        return {
            "pool_id": self.config.pool_id,
            "ready": ready,
            "draining": self.draining,
            "models": list(self.models),
            "last_error": error,
            "purged": self.purged_id,
            "engine_url": self.engine_url or None,
        }

    # --- desired state ------------------------------------------------------------

    def reconcile(self, desired: dict[str, Any]) -> None:
        self.draining = bool(desired.get("draining"))
        target = desired.get("model_ref")
        if target != self.failed_target:
            self.failed_target = None
        if target and target not in self.models and target != self.failed_target:
            self._in_background(self.reload, target)
        purge = desired.get("purge")
        if purge and purge.get("id") != self.purged_id:
            self._in_background(self.purge, purge)

    def _in_background(self, work: Any, argument: Any) -> None:
        # One change at a time per pool; a heartbeat arriving mid-reload does not start another.
        if not self.busy.acquire(blocking=False):
            return

        def run() -> None:
            try:
                work(argument)
            finally:
                self.busy.release()

        threading.Thread(target=run, name=f"agent-{self.config.pool_id}", daemon=True).start()

    def reload(self, model_ref: str) -> None:
        """Start the new engine beside the old one; switch only once it is healthy."""
        if not self.config.managed:
            self._reload_failed(model_ref, "this pool has no 'command', so the agent cannot start engines")
            return
        logger.info("pool.reloading", extra={"pool_id": self.config.pool_id, "model_ref": model_ref})
        engine = EngineProcess(self.config, model_ref, self.models_dir)
        try:
            engine.start_healthy()
        except EngineStartError as exc:
            self._reload_failed(model_ref, str(exc))
            return
        old = self.process
        self.process, self.engine_url, self.models = engine, engine.url, (model_ref,)
        self.last_error, self.engine_purged = "", False
        logger.info("pool.reloaded", extra={"pool_id": self.config.pool_id, "model_ref": model_ref})
        if old is not None:
            self._retire(old)

    def _reload_failed(self, model_ref: str, error: str) -> None:
        # The old engine never stopped, so it keeps serving: that is the rollback.
        self.failed_target = model_ref
        self.last_error = f"reload to {model_ref} failed: {error}"
        logger.error(
            "pool.reload_failed", extra={"pool_id": self.config.pool_id, "model_ref": model_ref, "error": error}
        )

    def _retire(self, old: EngineProcess) -> None:
        deadline = time.monotonic() + OLD_ENGINE_GRACE_S
        while time.monotonic() < deadline and old.alive():
            probe = probe_engine(self.config.engine, old.url)
            if probe.slots_free is None or probe.slots_free == probe.slots_total:
                break
            time.sleep(0.5)
        old.stop()

    def purge(self, request: dict[str, Any]) -> None:
        if request.get("drain_first", True) and not request.get("force"):
            self._wait_idle(timeout_s=300.0)
        if request.get("purge_engine"):
            self.stop_engine()
            self.engine_purged = True
        errors = [self._delete_model(model_ref) for model_ref in request.get("purge_models", [])]
        if request.get("delete_cache_dirs"):
            errors.extend(self._delete_dir(Path(path)) for path in self.config.cache_dirs)
        self.last_error = "; ".join(error for error in errors if error)
        self.purged_id = request.get("id")
        logger.info("pool.purged", extra={"pool_id": self.config.pool_id, "purge_id": self.purged_id})

    def _wait_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.engine_url:
            probe = probe_engine(self.config.engine, self.engine_url)
            if not probe.ready or probe.slots_free is None or probe.slots_free == probe.slots_total:
                return
            time.sleep(1.0)

    def _delete_model(self, model_ref: str) -> str:
        if self.models_dir is None:
            return f"no models_dir: kept {model_ref}"
        try:
            path = resolve_model_path(self.config, model_ref, self.models_dir).resolve()
        except EngineStartError as exc:
            return str(exc)
        return self._delete_inside(path, self.models_dir)

    def _delete_dir(self, path: Path) -> str:
        if self.models_dir is None:
            return f"no models_dir: kept {path}"
        return self._delete_inside(path.resolve(), self.models_dir)

    @staticmethod
    def _delete_inside(path: Path, root: Path) -> str:
        # Never delete outside the models folder, whatever a config or request says.
        if not path.is_relative_to(root) or path == root:
            return f"refused to delete {path}: outside {root}"
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
        return ""
