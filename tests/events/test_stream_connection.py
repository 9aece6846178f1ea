"""An SSE stream holds no database connection while it lasts (PostgreSQL: one per request thread)."""

from __future__ import annotations

import pytest
from django.db import connection

from orchestrator.checks import pool_problems
from orchestrator.settings import _database
from orchestrator.tasks.api.events import _task_and_budgets
from orchestrator.tasks.models import Task
from tests.console.conftest import make_task


@pytest.mark.django_db(transaction=True)
def test_attaching_lets_go_of_a_connection_past_its_age():
    # given a task, read outside any transaction, as a request thread reads it
    make_task("t-1")
    assert connection.connection is not None

    found = _task_and_budgets("t-1")

    assert found is not None
    # then PostgreSQL's connection is closed before the stream starts,
    # and SQLite's (the DB thread's, kept for the process's life) stays open
    if connection.vendor == "sqlite":
        assert connection.connection is not None
    else:
        assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_a_persistent_postgresql_connection_is_let_go_too():
    if connection.vendor == "sqlite":
        pytest.skip("SQLite keeps its one connection")
    make_task("t-1")
    connection.close_at = None  # as with ORCHD_DB_CONN_MAX_AGE unset to "no limit": never obsolete

    assert _task_and_budgets("t-1") is not None

    assert connection.connection is None


@pytest.mark.django_db
def test_inside_a_transaction_nothing_is_closed():
    make_task("t-1")

    assert _task_and_budgets("t-1") is not None

    assert connection.connection is not None
    assert Task.objects.filter(id="t-1").exists()  # the transaction is still usable


def test_a_postgresql_pool_is_configured_by_its_size(monkeypatch):
    monkeypatch.delenv("ORCHD_DB_CONN_MAX_AGE", raising=False)
    monkeypatch.setenv("ORCHD_DB_POOL_SIZE", "8")
    pooled = _database("postgres://u@db:5432/orchd")
    monkeypatch.setenv("ORCHD_DB_POOL_SIZE", "0")
    plain = _database("postgres://u@db:5432/orchd")

    assert pooled["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 8, "timeout": 30}  # type: ignore[index]
    assert pooled["CONN_MAX_AGE"] == 0  # PostgreSQL's default, which the pool needs (orchd.E003)
    assert "pool" not in plain["OPTIONS"]  # type: ignore[operator]


def test_a_pool_with_persistent_connections_stops_the_start():
    pooled = {"OPTIONS": {"pool": {"max_size": 4}}}

    assert [message.id for message in pool_problems({**pooled, "CONN_MAX_AGE": 60})] == ["orchd.E003"]
    assert pool_problems({**pooled, "CONN_MAX_AGE": 0}) == []
    assert pool_problems({"OPTIONS": {}, "CONN_MAX_AGE": 60}) == []
