"""A real web process (daphne) on the test database, and an SSE client for it."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import child_env, running, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WebServer:
    url: str
    log_path: Path
    process: Any

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_web_server(tmp_path: Path, name: str = "web", port: int | None = None, **env: str) -> Iterator[WebServer]:
    """daphne serving orchestrator.asgi on loopback, sharing the test database (and Redis, when set)."""
    port = port or free_port()
    data_dir = tmp_path / f"{name}-data"
    data_dir.mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "orchestrator.asgi:application"]
    log_path = tmp_path / f"{name}.log"
    with running(argv, child_env(data_dir, ORCHD_HOST="127.0.0.1", **env), log_path) as process:
        server = WebServer(f"http://127.0.0.1:{port}", log_path, process)

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"web server exited:\n{server.log()[-3000:]}")
            try:
                return httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout_s=30, what="the web server to answer /healthz")
        yield server


@dataclass
class Event:
    id: int
    event: str
    data: dict[str, Any]


@dataclass
class Stream:
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [event.event for event in self.events]

    @property
    def text(self) -> str:
        return "".join(event.data["t"] for event in self.events if event.event == "token")

    @property
    def terminal(self) -> Event:
        assert self.events, "no frames"
        assert self.events[-1].event in ("end", "error"), self.names
        return self.events[-1]


def parse_sse(lines: Iterator[str], stream: Stream, *, stop_after: int | None = None) -> Stream:
    fields: dict[str, str] = {}
    for line in lines:
        if line.startswith(":"):
            stream.comments.append(line)
            continue
        if line == "":
            if fields:
                stream.events.append(Event(int(fields["id"]), fields["event"], json.loads(fields["data"])))
                fields = {}
                if stream.events[-1].event in ("end", "error"):
                    break
                if stop_after is not None and sum(e.event == "token" for e in stream.events) >= stop_after:
                    break
            continue
        key, _, value = line.partition(":")
        fields[key] = value[1:] if value.startswith(" ") else value
    return stream


def read_stream(
    base_url: str,
    token: str,
    task_id: str,
    *,
    last_event_id: int | None = None,
    verbose: bool = False,
    stop_after_tokens: int | None = None,
    timeout_s: float = 60.0,
) -> Stream:
    headers = {"Authorization": f"Bearer {token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    url = f"{base_url}/v2/tasks/{task_id}/events" + ("?verbose=true" if verbose else "")
    stream = Stream()
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout_s)) as response:
        assert response.status_code == 200, response.read()
        stream.headers = dict(response.headers)
        parse_sse(response.iter_lines(), stream, stop_after=stop_after_tokens)
    return stream
