"""Shared fixtures. Actors: alice is an operator, bob a client, charlie has no valid token."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
from django.test import Client

from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token

# Engine processes for integration tests: `fake_engine` (factory fixture) and helpers.
pytest_plugins = ["tests.engines", "tests.support.llama", "tests.support.live", "tests.support.redis_server"]


class Api:
    """A JSON client for the API: `api.post(path, body, token=...)` and friends."""

    def __init__(self, client: Client, token: str | None = None) -> None:
        self.client = client
        self.token = token

    def as_token(self, token: str | None) -> Api:
        return Api(self.client, token)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Any:
        extra: dict[str, str] = dict(headers or {})
        if self.token is not None:
            extra.setdefault("Authorization", f"Bearer {self.token}")
        data: Any = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs: dict[str, Any] = {"headers": extra}
        if data is not None:
            kwargs.update(data=data, content_type=content_type)
        return getattr(self.client, method.lower())(path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, request: pytest.FixtureRequest
) -> None:
    """pytest-django's (the xdist worker's suffix on the test database), then: an SQLite test
    database about to be created anew removed with its write-ahead log, so the new file does
    not meet the old log.

    A run whose process ended with a connection still open (another thread's, a killed
    worker) leaves `<name>-wal` and `<name>-shm`; Django deletes only `<name>` before it
    creates the database again, and the new file with the old log failed every test with
    "disk I/O error". With `--reuse-db` the files are the database kept: left alone.
    """
    from pathlib import Path

    from django.conf import settings

    database: dict[str, Any] = settings.DATABASES["default"]
    name = database.get("TEST", {}).get("NAME")
    if "sqlite" not in str(database["ENGINE"]) or not name:
        return
    if request.config.getoption("reuse_db", False) and not request.config.getoption("create_db", False):
        return
    for path in (Path(name), Path(f"{name}-wal"), Path(f"{name}-shm"), Path(f"{name}-journal")):
        path.unlink(missing_ok=True)


@pytest.fixture(autouse=True, scope="session")
def _isolated_redis_keys() -> None:
    """One Redis key prefix per test session (and xdist worker), inherited by child processes.

    Test task ids repeat from run to run; without this, a stream could read
    frames another run left in Redis, and broadcasts would cross between workers.
    """
    from django.conf import settings

    prefix = f"orchd-test-{uuid.uuid4().hex[:8]}"
    settings.ORCHD_REDIS_PREFIX = prefix
    os.environ["ORCHD_REDIS_PREFIX"] = prefix
    layer: dict[str, Any] = settings.CHANNEL_LAYERS["default"]
    if "CONFIG" in layer:
        layer["CONFIG"]["prefix"] = f"{prefix}:ch"


@pytest.fixture(autouse=True)
def _fresh_event_log() -> None:
    """Each test starts with an empty in-process event log: test task ids repeat between tests,
    and a terminal frame left by an earlier test would make a new task's cancel a no-op."""
    from orchestrator.events import reset_event_log_for_tests

    reset_event_log_for_tests()


@pytest.fixture(autouse=True)
def _engines_keep_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """No engine is known to close kept connections at a test's start: a loopback port seen
    closing them in one test may serve another engine in the next."""
    from orchestrator.engines import adapter

    monkeypatch.setattr(adapter, "_CLOSING_ENGINES", set())


@pytest.fixture(autouse=True)
def _fast_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice_token(db: None) -> str:
    return issue_token("alice", Role.OPERATOR).value


@pytest.fixture
def bob_token(db: None) -> str:
    return issue_token("bob", Role.CLIENT).value


@pytest.fixture
def api(client: Client) -> Api:
    """Anonymous: no Authorization header."""
    return Api(client)


@pytest.fixture
def alice(client: Client, alice_token: str) -> Api:
    """An operator."""
    return Api(client, alice_token)


@pytest.fixture
def bob(client: Client, bob_token: str) -> Api:
    """A client."""
    return Api(client, bob_token)


@pytest.fixture
def charlie(client: Client, alice_token: str) -> Api:
    """An outsider with a made-up token (alice's existence turns dev mode off)."""
    return Api(client, "orchd_not-a-real-token")


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the SPEC's error envelope with this status and code."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert all(value is not None for value in body.values()), "absent fields are omitted, not null"
    assert response.has_header("X-Correlation-Id")
    return body


@pytest.fixture
def models_dir(tmp_path: Any, settings: Any) -> Any:
    directory = tmp_path / "models"
    directory.mkdir()
    settings.ORCHD_MODELS_DIR = directory
    return directory
