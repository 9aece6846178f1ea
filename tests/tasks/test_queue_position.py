"""Queue positions: what admission and a task's status report, counted from the index alone."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orchestrator.tasks.models import Task, TaskState
from orchestrator.tasks.queue import queue_counts, queued_ahead
from tests.tasks.conftest import queued_task

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0)
MODELS = ("m1", "m2")
ENGINES = ("openai", "vllm")


def fill_queue() -> list[Task]:
    """Tasks across models, engines, priorities and states, several (of different groups) sharing one instant."""
    tasks = []
    for index, (model, engine, rank, state) in enumerate(
        itertools.product(MODELS, ENGINES, (0, 1, 2), (TaskState.QUEUED, TaskState.QUEUED, TaskState.RUNNING))
    ):
        at = T0 + timedelta(milliseconds=(index % 5) * 10)  # five instants, shared by many tasks
        tasks.append(queued_task(f"t{index:03d}", at, model_ref=model, engine=engine, priority_rank=rank, state=state))
    Task.objects.bulk_create(tasks)
    return tasks


def dispatched_before(task: Task, other: Task) -> bool:
    """The dispatcher's order: priority, then age, then id."""
    return (other.priority_rank, other.created_at, other.id) < (task.priority_rank, task.created_at, task.id)


def expected_ahead(tasks: list[Task], task: Task) -> int:
    return sum(
        1
        for other in tasks
        if other.state == TaskState.QUEUED
        and other.model_ref == task.model_ref
        and other.engine == task.engine
        and dispatched_before(task, other)
    )


def test_a_queued_task_counts_the_tasks_dispatched_before_it():
    tasks = fill_queue()

    for task in tasks:
        counted = queued_ahead(task.model_ref, task.engine, task.priority_rank, task.created_at, task.id)
        assert counted == expected_ahead(tasks, task), task.id


def test_tasks_admitted_at_one_instant_are_ordered_by_id():
    for task_id in ("t-c", "t-a", "t-b"):
        queued_task(task_id, T0, model_ref="m1", engine="openai", priority_rank=1).save()
    queued_task("t-later", T0 + timedelta(milliseconds=1), model_ref="m1", engine="openai", priority_rank=1).save()

    positions = {
        task_id: queued_ahead("m1", "openai", 1, at, task_id)
        for task_id, at in (("t-a", T0), ("t-b", T0), ("t-c", T0), ("t-later", T0 + timedelta(milliseconds=1)))
    }

    assert positions == {"t-a": 0, "t-b": 1, "t-c": 2, "t-later": 3}


@pytest.mark.parametrize("rank", [0, 1, 2])
@pytest.mark.parametrize("offset_ms", [0, 15, 60])
def test_admission_counts_the_whole_queue_and_what_is_ahead_of_a_newcomer(rank, offset_ms):
    tasks = fill_queue()
    now = T0 + timedelta(milliseconds=offset_ms)

    counts = queue_counts("m1", "openai", rank, now)
    queued, ahead = counts.queued, counts.ahead

    assert queued == sum(1 for task in tasks if task.state == TaskState.QUEUED)
    # Nothing admitted at the same instant is counted ahead: the newcomer's id is not known to sort.
    assert ahead == sum(
        1
        for task in tasks
        if task.state == TaskState.QUEUED
        and (task.model_ref, task.engine) == ("m1", "openai")
        and (task.priority_rank, task.created_at) < (rank, now)
    )


def test_an_empty_queue_counts_nothing():
    counts = queue_counts("m1", "openai", 0, T0)
    assert (counts.queued, counts.ahead) == (0, 0)
    assert queued_ahead("m1", "openai", 0, T0, "t") == 0


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's query plans")
def test_the_counts_read_the_position_index_and_no_row():
    fill_queue()
    with CaptureQueriesContext(connection) as captured:
        queue_counts("m1", "openai", 1, T0)
        queued_ahead("m1", "openai", 1, T0, "t005")

    for query in captured.captured_queries:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {query['sql']}")
            steps = [row[-1] for row in cursor.fetchall()]
        reads = [step for step in steps if "tasks_task" in step]
        assert reads, steps
        # Every count is a range of an index holding every column it reads: no table row is read.
        assert all("USING COVERING INDEX" in step for step in reads), steps
        assert any("task_queue_position" in step for step in reads), steps
