"""Releasing reservations: all or nothing, and late rather than never (against a real database's commits)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from orchestrator import sql
from orchestrator.budgets import ledger
from orchestrator.sessions.models import Session
from orchestrator.sessions.services import open_session_turn
from orchestrator.tasks import tally
from orchestrator.tasks.dispatcher import Dispatcher
from orchestrator.tasks.lifecycle import UNSETTLED_GRACE, settle_ended_unrun
from orchestrator.tasks.models import Task, TaskState
from tests.tasks.conftest import add_pool, task_body

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def pool() -> None:
    add_pool("p1", "http://127.0.0.1:9", slots=4)


def reserved(bob: Any, session_id: str = "s-b") -> str:
    """A queued task reserving 10 tokens of session `session_id`; its id."""
    open_session_turn(session_id, timezone.now())
    Session.objects.filter(id=session_id).update(turns=0, tokens_budget=100)
    response = bob.post("/v2/tasks", task_body(session_id=session_id, max_tokens=10))
    assert response.status_code == 202
    assert Session.objects.get(id=session_id).tokens_reserved == 10
    return str(response.json()["task_id"])


def ended_unsettled(task_id: str, state: str, ago: timedelta) -> None:
    """As a drop or an expiry whose process died before it released the reservation."""
    Task.objects.filter(id=task_id).update(state=state, finished_at=timezone.now() - ago)


def test_an_expired_task_whose_release_was_lost_is_settled_by_the_sweep(bob: Any) -> None:
    task_id = reserved(bob)
    ended_unsettled(task_id, TaskState.EXPIRED, UNSETTLED_GRACE + timedelta(seconds=1))

    assert settle_ended_unrun(timezone.now()) == [task_id]

    assert Session.objects.get(id="s-b").tokens_reserved == 0
    assert Task.objects.get(id=task_id).budget_settled


def test_a_task_that_ended_running_is_left_to_its_runner(bob: Any) -> None:
    task_id = reserved(bob)
    ended_unsettled(task_id, TaskState.FAILED, timedelta(hours=1))

    assert settle_ended_unrun(timezone.now()) == []
    assert Session.objects.get(id="s-b").tokens_reserved == 10


def test_the_dispatchers_sweep_releases_them_even_when_folding_fails(bob: Any, monkeypatch: Any) -> None:
    task_id = reserved(bob)
    ended_unsettled(task_id, TaskState.DROPPED, UNSETTLED_GRACE + timedelta(seconds=1))

    async def broken_fold() -> int:
        raise RuntimeError("the tally is being migrated")

    async def sweep() -> None:
        try:
            await Dispatcher()._sweep()
        finally:  # asgiref's thread-sensitive thread outlives the test: its connection must not
            await sync_to_async(connections.close_all, thread_sensitive=True)()

    monkeypatch.setattr(tally, "afold", broken_fold)
    asyncio.run(sweep())

    assert Session.objects.get(id="s-b").tokens_reserved == 0


def test_a_settlement_that_fails_halfway_leaves_the_task_unsettled(bob: Any, monkeypatch: Any) -> None:
    task_id = reserved(bob)
    real_update = sql.update

    def failing_on_sessions(model: Any, *args: Any) -> int:
        if model is Session:
            raise RuntimeError("the connection dropped")
        return real_update(model, *args)

    monkeypatch.setattr("orchestrator.budgets.ledger.update", failing_on_sessions)
    with pytest.raises(RuntimeError):
        ledger.settle(task_id, 0, 0, ledger.ZERO)

    assert not Task.objects.get(id=task_id).budget_settled  # the compare-and-swap rolled back with it
    monkeypatch.setattr("orchestrator.budgets.ledger.update", real_update)
    assert ledger.settle(task_id, 0, 0, ledger.ZERO) is True
    assert Session.objects.get(id="s-b").tokens_reserved == 0
