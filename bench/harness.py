"""Starting a throwaway orchestratord (SQLite, one web process) and engines for benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout_s} s")


@contextmanager
def process(argv: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def fake_engine(protocol: str = "llamacpp", **options: object) -> Iterator[str]:
    port = free_port()
    argv = [PYTHON, "manage.py", "fake_engine", "--protocol", protocol, "--port", str(port)]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    with process(argv):
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health")
        yield url


@dataclass
class Orchestrator:
    url: str
    token: str


@contextmanager
def orchestrator(server: str = "daphne", **env_extra: str) -> Iterator[Orchestrator]:
    """A fresh install on a temporary SQLite database, served by daphne (or uvicorn)."""
    with tempfile.TemporaryDirectory(prefix="orchd-bench-") as data_dir:
        env = dict(os.environ, ORCHD_DATA_DIR=data_dir, ORCHD_LOG_LEVEL="WARNING", **env_extra)
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        token = subprocess.run(
            [PYTHON, "manage.py", "create_token", "--role", "operator", "--name", "bench"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = free_port()
        if server == "uvicorn":
            argv = [
                PYTHON,
                "-m",
                "uvicorn",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "orchestrator.asgi:application",
            ]
        else:
            argv = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "orchestrator.asgi:application"]
        with process(argv, env):
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz")
            yield Orchestrator(url, token)


def register_pool(
    orch: Orchestrator,
    engine_url: str,
    *,
    engine: str = "llamacpp",
    slots: int = 8,
    model: str = "bench-model",
    pool_id: str = "bench-pool",
) -> None:
    """Register a node with one pool and mark it ready with a heartbeat."""
    headers = {"Authorization": f"Bearer {orch.token}"}
    spec = {"pool_id": pool_id, "engine": engine, "engine_url": engine_url, "models": [model], "slots_total": slots}
    body = {"node_id": f"node-{pool_id}", "pools": [spec]}
    httpx.post(f"{orch.url}/v2/nodes/register", json=body, headers=headers).raise_for_status()
    beat = {"pools": [{"pool_id": pool_id, "ready": True, "slots_total": slots, "slots_free": slots}]}
    httpx.post(f"{orch.url}/v2/nodes/node-{pool_id}/heartbeat", json=beat, headers=headers).raise_for_status()
