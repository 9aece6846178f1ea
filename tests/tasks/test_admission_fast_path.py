"""Admission's fast path (with nothing queued, admission leases the slot itself), and the end of a run.

The dispatcher is a stand-in here (what admission hands it is the point);
the live tests run the real one through this path on every first task.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection

from orchestrator.artifacts.services import find_artifact, load_document
from orchestrator.events import get_event_log, get_sync_event_log
from orchestrator.events.base import Frame, encode_data
from orchestrator.tasks import admission, claims, finishing, lifecycle, notify, recovery
from orchestrator.tasks import dispatcher as dispatcher_module
from orchestrator.tasks.claims import Claim
from orchestrator.tasks.dispatcher import Dispatcher
from orchestrator.tasks.models import Task, TaskState
from orchestrator.tasks.runner import Outcome
from pools.models import Pool
from tests.tasks.conftest import add_pool, task_body

pytestmark = pytest.mark.django_db


@dataclass
class StandInDispatcher:
    owner: str = "host:1:abcd"
    started: list[Claim] = field(default_factory=list)
    offsets: int = 0

    def next_round_robin(self) -> int:
        self.offsets += 1
        return self.offsets - 1

    def start_threadsafe(self, claim: Claim) -> None:
        self.started.append(claim)


@pytest.fixture
def dispatcher(monkeypatch: pytest.MonkeyPatch) -> StandInDispatcher:
    stand_in = StandInDispatcher()
    monkeypatch.setattr(admission, "local_dispatcher", lambda: stand_in)
    return stand_in


@pytest.fixture
def wakes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(notify, "wake_dispatchers", lambda: calls.append(1))
    return calls


def test_an_idle_pool_takes_the_task_at_admission(bob, dispatcher, wakes, django_capture_on_commit_callbacks):
    add_pool("p1", "http://127.0.0.1:9", slots=2)

    with django_capture_on_commit_callbacks(execute=True):
        response = bob.post("/v2/tasks", task_body())

    assert response.status_code == 202
    task = Task.objects.get(id=response.json()["task_id"])
    assert (task.state, task.pool_id, task.owner, task.attempts) == (TaskState.DISPATCHED, "p1", dispatcher.owner, 1)
    assert Pool.objects.get(id="p1").active_leases == 1
    assert [claim.task_id for claim in dispatcher.started] == [task.id]
    assert dispatcher.started[0].attempts == 1
    assert wakes == [], "nothing is left for a dispatcher pass"
    assert _events(task.id)[0] == "started", "`started` stays frame 0"


def test_with_tasks_queued_the_new_one_queues_behind_them(bob, dispatcher, wakes, django_capture_on_commit_callbacks):
    add_pool("p1", "http://127.0.0.1:9", slots=1)
    Pool.objects.filter(id="p1").update(active_leases=1)  # busy: the first task waits
    with django_capture_on_commit_callbacks(execute=True):
        first = bob.post("/v2/tasks", task_body()).json()["task_id"]
    Pool.objects.filter(id="p1").update(active_leases=0)  # a slot frees up before the dispatcher looks
    wakes.clear()

    with django_capture_on_commit_callbacks(execute=True):
        second = bob.post("/v2/tasks", task_body()).json()["task_id"]

    states = dict(Task.objects.filter(id__in=[first, second]).values_list("id", "state"))
    assert states == {first: TaskState.QUEUED, second: TaskState.QUEUED}, "dispatch order is the queue's"
    assert dispatcher.started == []
    assert wakes == [1], "a slot is free: a dispatcher pass takes the first task"


def test_a_task_queued_behind_a_fully_leased_fleet_wakes_no_dispatcher_on_sqlite(
    bob, dispatcher, wakes, django_capture_on_commit_callbacks
):
    add_pool("p1", "http://127.0.0.1:9", slots=2, active_leases=2)
    add_pool("p2", "http://127.0.0.1:9", slots=1, active_leases=1)

    with django_capture_on_commit_callbacks(execute=True):
        response = bob.post("/v2/tasks", task_body())

    assert response.status_code == 202
    assert Task.objects.get(id=response.json()["task_id"]).state == TaskState.QUEUED
    # SQLite's writers take turns: the lease that frees a slot commits after this admission and
    # wakes the dispatchers itself. PostgreSQL's may interleave, so admission always wakes there.
    assert wakes == ([] if connection.vendor == "sqlite" else [1])


def test_a_failed_announcement_still_starts_the_leased_task(
    bob, dispatcher, wakes, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    add_pool("p1", "http://127.0.0.1:9", slots=2)

    def broken(*args: object) -> None:
        raise ConnectionError("event log down")

    monkeypatch.setattr(lifecycle, "announce_admitted", broken)

    with (
        caplog.at_level(logging.ERROR, logger="orchestrator.admission"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = bob.post("/v2/tasks", task_body())

    assert response.status_code == 202, "the task is persisted: the client gets its answer"
    task_id = response.json()["task_id"]
    assert [claim.task_id for claim in dispatcher.started] == [task_id], "a leased task always gets its runner"
    assert any(record.msg == "task.announce_failed" for record in caplog.records)


def test_a_failed_announcement_of_a_queued_task_still_wakes_the_dispatchers(
    bob, monkeypatch, wakes, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(admission, "local_dispatcher", lambda: None)  # no dispatcher in this process
    add_pool("p1", "http://127.0.0.1:9", slots=2)
    monkeypatch.setattr(lifecycle, "announce_admitted", lambda *args: 1 / 0)

    with django_capture_on_commit_callbacks(execute=True):
        response = bob.post("/v2/tasks", task_body())

    assert response.status_code == 202
    assert Task.objects.get(id=response.json()["task_id"]).state == TaskState.QUEUED
    assert wakes == [1]


def _events(task_id: str) -> list[str]:
    return [frame.event for frame in async_to_sync(get_event_log().read)(task_id, -1, 0)]


def _leased_claim(bob: Any, dispatcher: StandInDispatcher, capture: Any) -> Claim:
    add_pool("p1", "http://127.0.0.1:9", slots=2)
    with capture(execute=True):
        bob.post("/v2/tasks", task_body())
    return dispatcher.started[0]


def test_the_end_records_the_transcript_with_the_outcome(bob, dispatcher, wakes, django_capture_on_commit_callbacks):
    claim = _leased_claim(bob, dispatcher, django_capture_on_commit_callbacks)

    finishing._record_all(claim, Outcome("completed", tokens_out=2, finish_reason="stop"), TaskState.COMPLETED, [])

    task = Task.objects.get(id=claim.task_id)
    assert (task.state, task.tokens_out, task.budget_settled) == (TaskState.COMPLETED, 2, True)
    assert task.transcript_artifact_id.startswith("sha256:")
    assert Pool.objects.get(id="p1").active_leases == 0


def test_a_transcript_that_cannot_be_stored_does_not_keep_the_task_running(
    bob, dispatcher, wakes, monkeypatch, django_capture_on_commit_callbacks
):
    claim = _leased_claim(bob, dispatcher, django_capture_on_commit_callbacks)

    def broken(*args: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(finishing, "store_transcript", broken)

    finishing._record_all(claim, Outcome("completed", tokens_out=2, finish_reason="stop"), TaskState.COMPLETED, [])

    task = Task.objects.get(id=claim.task_id)
    assert (task.state, task.transcript_artifact_id, task.budget_settled) == (TaskState.COMPLETED, "", True)
    assert Pool.objects.get(id="p1").active_leases == 0, "the lease goes back whatever happened"


def test_the_transcript_holds_each_frames_data(bob, dispatcher, wakes, django_capture_on_commit_callbacks):
    claim = _leased_claim(bob, dispatcher, django_capture_on_commit_callbacks)
    frames = [
        Frame.encoded(0, "started", encode_data({"queue_position": 0})),
        Frame.encoded(1, "token", encode_data({"t": "héllo", "i": 0})),
        Frame(2, "end", {"tokens_out": 1, "finish_reason": "stop"}),
    ]

    finishing._record_all(claim, Outcome("completed", tokens_out=1, finish_reason="stop"), TaskState.COMPLETED, frames)

    task = Task.objects.get(id=claim.task_id)
    artifact = find_artifact(task.transcript_artifact_id)
    assert artifact is not None
    events = load_document(artifact)["content"]["events"]
    assert events == [{"event": frame.event, "data": frame.data} for frame in frames]


def test_frames_that_cannot_be_decoded_cost_the_transcript_not_the_end(
    bob, dispatcher, wakes, django_capture_on_commit_callbacks
):
    claim = _leased_claim(bob, dispatcher, django_capture_on_commit_callbacks)
    broken = [Frame.encoded(0, "token", encode_data({"t": "a", "i": 0})), Frame.encoded(1, "token", "{not json")]

    finishing._record_all(claim, Outcome("completed", tokens_out=2, finish_reason="stop"), TaskState.COMPLETED, broken)

    task = Task.objects.get(id=claim.task_id)
    assert (task.state, task.transcript_artifact_id, task.budget_settled) == (TaskState.COMPLETED, "", True)
    assert Pool.objects.get(id="p1").active_leases == 0


def test_a_pool_drained_after_admission_read_it_is_not_leased(
    bob, dispatcher, wakes, monkeypatch, django_capture_on_commit_callbacks
):
    add_pool("p1", "http://127.0.0.1:9", slots=2)
    rows = claims.pool_rows()
    Pool.objects.filter(id="p1").update(desired_draining=True)  # the operator drains it in between
    monkeypatch.setattr(claims, "pool_rows", lambda: rows)  # what admission read before its lock

    with django_capture_on_commit_callbacks(execute=True):
        response = bob.post("/v2/tasks", task_body())

    assert response.status_code == 202
    assert Task.objects.get(id=response.json()["task_id"]).state == TaskState.QUEUED
    assert Pool.objects.get(id="p1").active_leases == 0
    assert dispatcher.started == []


def test_a_dead_run_that_had_streamed_is_failed_not_run_again(
    bob, dispatcher, wakes, django_capture_on_commit_callbacks
):
    claim = _leased_claim(bob, dispatcher, django_capture_on_commit_callbacks)
    # Its first token reached the log; the process died before `started_at` was written.
    get_sync_event_log().append(claim.task_id, "token", {"t": "Hi", "i": 0})

    assert recovery.recover_orphans("another-process") == [claim.task_id]

    task = Task.objects.get(id=claim.task_id)
    assert task.state == TaskState.FAILED, "re-running it would send its first tokens twice"
    assert task.error is not None
    assert task.error["code"] == "WORKER_RESET"
    assert Pool.objects.get(id="p1").active_leases == 0


def test_a_dead_run_that_had_not_streamed_goes_back_to_the_queue(
    bob, dispatcher, wakes, django_capture_on_commit_callbacks
):
    claim = _leased_claim(bob, dispatcher, django_capture_on_commit_callbacks)

    assert recovery.recover_orphans("another-process") == [claim.task_id]

    assert Task.objects.get(id=claim.task_id).state == TaskState.QUEUED
    assert Pool.objects.get(id="p1").active_leases == 0


def test_a_task_leased_for_a_dispatcher_whose_loop_just_closed_goes_back_to_the_queue(
    bob, dispatcher, wakes, monkeypatch, django_capture_on_commit_callbacks
):
    add_pool("p1", "http://127.0.0.1:9", slots=2)

    def closed(claim: Claim) -> None:
        raise RuntimeError("Event loop is closed")

    monkeypatch.setattr(dispatcher, "start_threadsafe", closed)

    with django_capture_on_commit_callbacks(execute=True):
        response = bob.post("/v2/tasks", task_body())

    assert response.status_code == 202, "the task is admitted all the same"
    task = Task.objects.get(id=response.json()["task_id"])
    assert (task.state, task.owner, task.pool_id) == (TaskState.QUEUED, "", "")
    assert Pool.objects.get(id="p1").active_leases == 0
    assert wakes == [1], "another dispatcher may take it"


async def test_admission_leases_only_for_a_dispatcher_others_see_alive(monkeypatch):
    loop = asyncio.get_running_loop()
    running = Dispatcher(loop)
    monkeypatch.setattr(dispatcher_module, "_dispatchers", {id(loop): running})

    assert dispatcher_module.local_dispatcher() is None, "no heartbeat written yet"
    running.beating = True
    assert dispatcher_module.local_dispatcher() is running
    running.stopping = True
    assert dispatcher_module.local_dispatcher() is None
