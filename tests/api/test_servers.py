"""orchestrator.servers: the web process's set-up, shared with bench/floor_app.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, reset_queries

from orchestrator import servers


@pytest.fixture
def signals_restored() -> Iterator[None]:
    started, finished = list(request_started.receivers), list(request_finished.receivers)
    yield
    request_started.receivers[:], request_finished.receivers[:] = started, finished
    request_started.sender_receivers_cache.clear()
    request_finished.sender_receivers_cache.clear()


def _receives(signal: object, receiver: object) -> bool:
    sync_receivers, async_receivers = signal._live_receivers(None)  # type: ignore[attr-defined]
    return receiver in [*sync_receivers, *async_receivers]


def test_connections_are_checked_after_requests_not_before(signals_restored: None) -> None:
    request_started.connect(close_old_connections)
    request_started.connect(reset_queries)
    servers.check_connections_after_requests()
    assert not _receives(request_started, close_old_connections)
    assert not _receives(request_started, reset_queries)
    assert _receives(request_finished, close_old_connections)
    assert _receives(request_finished, reset_queries)
