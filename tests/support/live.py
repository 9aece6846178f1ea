"""Live data-plane fixtures: a web process, pools pointing at engines, a client (a pytest plugin)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from nodes.models import Node, NodeStatus
from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token
from pools.models import Pool
from tests.support.web import WebServer, run_web_server

_ids = itertools.count()
_run = uuid.uuid4().hex[:6]


def add_pool(
    pool_id: str,
    engine_url: str,
    *,
    engine: str = "llamacpp",
    models: tuple[str, ...] = ("tiny",),
    slots: int = 4,
    node_id: str | None = None,
    **fields: Any,
) -> Pool:
    node, _ = Node.objects.get_or_create(id=node_id or f"node-{pool_id}", defaults={"status": NodeStatus.ONLINE})
    return Pool.objects.create(
        id=pool_id,
        node=node,
        engine=engine,
        engine_url=engine_url,
        model_refs=list(models),
        slots_total=slots,
        slots_free=slots,
        **{"ready": True, **fields},
    )


def task_body(**overrides: Any) -> dict[str, Any]:
    number = next(_ids)
    return {
        "task_id": f"t-{_run}-{number}",
        "session_id": "s-1",
        "workload": "completion",
        "model_ref": "tiny",
        "engine": "llamacpp",
        "ctx": 512,
        "priority": "interactive",
        "max_tokens": 8,
        "deadline_ms": 60_000,
        "prompt": "Hello there",
        **overrides,
    }


class Client:
    """httpx against the live web process, as a client with a bearer token."""

    def __init__(self, server: WebServer, token: str) -> None:
        self.server = server
        self.token = token
        self.http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def submit(self, **overrides: Any) -> httpx.Response:
        return self.http.post("/v2/tasks", json=task_body(**overrides))

    def status(self, task_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"/v2/tasks/{task_id}").json())

    def cancel(self, task_id: str) -> httpx.Response:
        return self.http.post(f"/v2/tasks/{task_id}/cancel")


@pytest.fixture
def operator_token(transactional_db: None) -> str:
    return issue_token("alice", Role.OPERATOR).value


@pytest.fixture
def web(tmp_path: Any, operator_token: str) -> Iterator[Callable[..., Client]]:
    """Start web processes with extra env; each returns a Client with alice's (operator) token."""
    started: list[Any] = []

    def start(name: str = "web", **env: str) -> Client:
        context = run_web_server(tmp_path, name, None, **env)
        server = context.__enter__()
        started.append(context)
        return Client(server, operator_token)

    yield start
    for context in reversed(started):
        context.__exit__(None, None, None)
