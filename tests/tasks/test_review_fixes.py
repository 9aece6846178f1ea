"""Races found in review: each pinned down so it cannot come back."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from orchestrator.events import get_event_log
from orchestrator.tasks import admission
from orchestrator.tasks.claims import claim_tasks
from orchestrator.tasks.dispatcher import Dispatcher
from orchestrator.tasks.lifecycle import cancel_task
from orchestrator.tasks.models import Task, TaskState
from orchestrator.tasks.runner import run_claim
from pools.models import Pool
from tests.conftest import assert_envelope
from tests.tasks.conftest import add_pool, task_body

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def pool():
    return add_pool("p1", "http://127.0.0.1:9", slots=4)


def test_a_cancel_that_loses_to_the_end_frame_leaves_the_outcome_alone(bob):
    task_id = bob.post("/v2/tasks", task_body()).json()["task_id"]
    Task.objects.filter(id=task_id).update(state=TaskState.RUNNING)
    async_to_sync(get_event_log().terminate)(task_id, "end", {"tokens_out": 3, "finish_reason": "stop"})

    assert cancel_task(task_id, "client") is False

    assert Task.objects.get(id=task_id).state == TaskState.RUNNING, "the runner records `completed` itself"


def test_canceling_a_queued_task_settles_its_budget_once(bob):
    task_id = bob.post("/v2/tasks", task_body()).json()["task_id"]

    assert cancel_task(task_id, "client") is True
    assert cancel_task(task_id, "client") is False

    task = Task.objects.get(id=task_id)
    assert (task.state, task.budget_settled) == (TaskState.CANCELED, True)


def test_a_racing_duplicate_task_id_gets_the_original_answer(bob, monkeypatch):
    body = task_body()
    first = bob.post("/v2/tasks", body).json()
    real = admission._idempotent_replay
    calls = iter([None])  # the second request does not see the first one's row at first

    monkeypatch.setattr(admission, "_idempotent_replay", lambda request: next(calls, real(request)))

    response = bob.post("/v2/tasks", body)

    assert response.status_code == 202
    assert response.json() == first
    assert Task.objects.count() == 1


def test_a_racing_duplicate_with_another_body_is_still_409(bob, monkeypatch):
    body = task_body()
    bob.post("/v2/tasks", body)
    real = admission._idempotent_replay
    calls = iter([None])
    monkeypatch.setattr(admission, "_idempotent_replay", lambda request: next(calls, real(request)))

    assert_envelope(bob.post("/v2/tasks", {**body, "max_tokens": 99}), 409, "CONFLICT")


def test_a_finished_run_never_evicts_a_newer_run_of_the_same_task():
    async def scenario() -> tuple[bool, bool]:
        dispatcher = Dispatcher()
        old = asyncio.create_task(asyncio.sleep(0))
        new = asyncio.create_task(asyncio.sleep(10))
        dispatcher.runners["t"] = (object(), new)  # type: ignore[assignment]
        await old
        dispatcher._forget("t", old)
        kept = "t" in dispatcher.runners
        dispatcher._forget("t", new)
        new.cancel()
        return kept, "t" in dispatcher.runners

    assert asyncio.run(scenario()) == (True, False)


def test_a_run_that_is_finishing_is_not_stopped():
    class FakeRunner:
        stop_reason = None
        finishing = True

    async def scenario() -> bool:
        dispatcher = Dispatcher()
        task = asyncio.create_task(asyncio.sleep(10))
        dispatcher.runners["t"] = (FakeRunner(), task)  # type: ignore[assignment]
        dispatcher.stop_runner("t", "canceled")
        await asyncio.sleep(0)
        stopped = task.cancelled()
        task.cancel()
        return stopped

    assert asyncio.run(scenario()) is False


def test_owner_ids_fit_their_column(monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "h" * 200)

    limit = Task._meta.get_field("owner").max_length
    assert limit is not None
    assert len(Dispatcher().owner) <= limit


def test_a_run_canceled_before_it_started_never_asks_the_engine(bob, monkeypatch):
    # given a task claimed (committed, its slot leased) whose runner has not started yet
    task_id = bob.post("/v2/tasks", task_body()).json()["task_id"]
    (claim,) = claim_tasks("test-owner", timezone.now())
    assert Pool.objects.get(id="p1").active_leases == 1
    # and a cancel in between: the dispatcher has no runner to stop yet
    assert cancel_task(task_id, "client") is True
    asked: list[str] = []

    class Engine:
        def stream(self, request: object) -> None:
            asked.append(claim.task_id)
            raise AssertionError("the engine was asked")

    monkeypatch.setattr("orchestrator.tasks.runner.adapter_for", lambda engine: Engine())

    outcome = async_to_sync(run_claim)(claim)

    assert asked == [], "no engine request for a task whose stream has ended"
    assert outcome.kind == "canceled"
    task = Task.objects.get(id=task_id)
    assert task.state == TaskState.CANCELED
    assert task.budget_settled is True, "its reservation is settled, once, by the run"
    assert Pool.objects.get(id="p1").active_leases == 0, "its slot is given back"
    frames = async_to_sync(get_event_log().read)(task_id, -1, 0)
    assert [frame.event for frame in frames].count("end") == 1, "the cancel's end frame, and no other"
