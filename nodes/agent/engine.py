"""Engine processes the agent starts itself (pools with a `command`)."""

from __future__ import annotations

import logging
import shlex
import socket
import subprocess
import time
from pathlib import Path

import httpx

from nodes.agent.config import PoolConfig
from pools.probes import probe_engine

logger = logging.getLogger("orchestrator.agent")

HEALTH_POLL_S = 0.25


class EngineStartError(RuntimeError):
    """The engine could not be started or never became healthy."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def resolve_model_path(pool: PoolConfig, model_ref: str, models_dir: Path | None) -> Path:
    """The file for `model_ref`: `model_paths[model_ref]`, relative to models_dir when not absolute."""
    configured = pool.model_paths.get(model_ref, model_ref)
    path = Path(configured)
    if not path.is_absolute():
        if models_dir is None:
            raise EngineStartError(f"no models_dir to resolve '{configured}' for model '{model_ref}'")
        path = models_dir / path
    return path


class EngineProcess:
    """One engine process serving one model on its own loopback port."""

    def __init__(self, pool: PoolConfig, model_ref: str, models_dir: Path | None) -> None:
        self.pool = pool
        self.model_ref = model_ref
        self.models_dir = models_dir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        model_path = resolve_model_path(self.pool, self.model_ref, self.models_dir)
        if not model_path.exists():
            raise EngineStartError(f"model file {model_path} for '{self.model_ref}' does not exist")
        ctx = self.pool.ctx_max or 2048
        text = self.pool.command.format(
            model_ref=self.model_ref,
            model_path=str(model_path),
            host="127.0.0.1",
            port=self.port,
            slots=self.pool.slots,
            ctx=ctx,
            ctx_total=ctx * self.pool.slots,
        )
        return shlex.split(text)

    def start(self) -> None:
        argv = self.command()
        logger.info("engine.starting", extra={"pool_id": self.pool.pool_id, "model_ref": self.model_ref, "argv": argv})
        try:
            self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as exc:
            raise EngineStartError(f"cannot start {argv[0]}: {exc}") from exc

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=httpx.Timeout(2.0)) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise EngineStartError(f"engine exited with status {self.process.returncode} before it was healthy")
                if probe_engine(self.pool.engine, self.url, client).ready:
                    return
                time.sleep(HEALTH_POLL_S)
        raise EngineStartError(f"engine not healthy after {timeout_s:.0f} s")

    def start_healthy(self) -> None:
        self.start()
        try:
            self.wait_healthy(self.pool.health_timeout_s)
        except EngineStartError:
            self.stop()
            raise

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
