"""Start `manage.py fake_engine` as a real process for tests (a pytest plugin: the `fake_engine` fixture).

    with run_fake_engine("openai", slots=2, fault="split_utf8") as engine:
        httpx.post(f"{engine.url}/v1/completions", json={...})
        assert engine.stats()["completed"] == 1

Keyword options become command-line options (`tokens_per_s=0` → `--tokens-per-s 0`,
a list repeats the option, True is a bare flag). Unless given, engines start
with `ttft_ms=0` and `tokens_per_s=0`, i.e. as fast as possible.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
FAST = {"ttft_ms": 0, "tokens_per_s": 0}

_READY_LINE = re.compile(r"fake_engine listening on (http://\S+?:(\d+)) protocol=")


@dataclass
class RunningEngine:
    """A fake engine process listening on loopback; `url` has no trailing slash."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    protocol: str
    log_path: Path = field(repr=False)

    def stats(self) -> dict[str, int]:
        """`GET /_fake/stats`: active, max_active_seen, requests, completed, client_disconnects, queued, ..."""
        response = httpx.get(f"{self.url}/_fake/stats", timeout=5)
        response.raise_for_status()
        stats: dict[str, int] = response.json()
        return stats

    def reset(self) -> None:
        httpx.post(f"{self.url}/_fake/reset", timeout=5).raise_for_status()

    def wait_for_stats(self, timeout: float = 5.0, **expected: int) -> dict[str, int]:
        """Poll until every named counter has the expected value (the engine counts asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if all(stats.get(k) == v for k, v in expected.items()) or time.monotonic() > deadline:
                return stats
            time.sleep(0.02)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)


def command_line(protocol: str, options: dict[str, Any]) -> list[str]:
    argv = [sys.executable, "manage.py", "fake_engine", "--host", "127.0.0.1", "--port", "0", "--protocol", protocol]
    for key, value in {**FAST, **options}.items():
        flag = "--" + key.replace("_", "-")
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            if item is True:
                argv.append(flag)
            elif item is not None and item is not False:
                argv += [flag, str(item)]
    return argv


def start_fake_engine(
    protocol: str = "llamacpp", *, wait_healthy: bool = True, env: dict[str, str] | None = None, **options: Any
) -> RunningEngine:
    """Start an engine on a free port; with `wait_healthy`, return once `/health` answers 200.

    `env` adds to (or overrides) this process's environment for the child.
    """
    fd, name = tempfile.mkstemp(prefix=f"fake-engine-{protocol}-", suffix=".log")
    log_path = Path(name)
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            command_line(protocol, options),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        url, port = _wait_for_ready_line(process, log_path, deadline)
        engine = RunningEngine(url=url, port=port, process=process, protocol=protocol, log_path=log_path)
        if wait_healthy:
            _wait_healthy(engine, deadline)
    except BaseException:
        _kill(process)
        log_path.unlink(missing_ok=True)
        raise
    return engine


@contextmanager
def run_fake_engine(protocol: str = "llamacpp", **options: Any) -> Iterator[RunningEngine]:
    """`start_fake_engine` as a context manager that stops the engine on exit."""
    engine = start_fake_engine(protocol, **options)
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def fake_engine() -> Iterator[Callable[..., RunningEngine]]:
    """A factory: `fake_engine("tgi", slots=2)` starts an engine; all are stopped at teardown."""
    started: list[RunningEngine] = []

    def start(protocol: str = "llamacpp", **options: Any) -> RunningEngine:
        engine = start_fake_engine(protocol, **options)
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.stop()


def _wait_for_ready_line(process: subprocess.Popen[bytes], log_path: Path, deadline: float) -> tuple[str, int]:
    while time.monotonic() < deadline:
        match = _READY_LINE.search(log_path.read_text(errors="replace"))
        if match:
            return match.group(1), int(match.group(2))
        if process.poll() is not None:
            raise RuntimeError(f"fake_engine exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.02)
    raise TimeoutError(f"fake_engine did not start in {START_TIMEOUT_S} s:\n{log_path.read_text(errors='replace')}")


def _wait_healthy(engine: RunningEngine, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{engine.url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"fake_engine at {engine.url} was not healthy within {START_TIMEOUT_S} s:\n{engine.log()}")


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
