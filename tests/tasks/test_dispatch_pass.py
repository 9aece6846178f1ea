"""A dispatcher pass looks before it takes the write lock: most passes have nothing to claim."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from nodes.models import NodeStatus
from orchestrator.tasks.claims import claim_tasks
from orchestrator.tasks.models import Task, TaskState
from pools.models import Pool
from tests.tasks.conftest import add_pool, queued_task

pytestmark = pytest.mark.django_db


def a_pass() -> tuple[list[str], list[str]]:
    """The task ids one pass claims, and the statements it ran."""
    with CaptureQueriesContext(connection) as captured:
        claimed = claim_tasks("test-owner", timezone.now())
    return [claim.task_id for claim in claimed], [query["sql"] for query in captured.captured_queries]


def test_with_every_slot_leased_a_pass_reads_once_and_writes_nothing():
    add_pool("p1", "http://127.0.0.1:9", slots=2, active_leases=2)
    queued_task("t-wait", timezone.now()).save()

    claimed, statements = a_pass()

    assert claimed == []
    assert len(statements) == 1, statements
    assert Task.objects.get(id="t-wait").state == TaskState.QUEUED


def test_with_nothing_queued_a_pass_reads_once():
    add_pool("p1", "http://127.0.0.1:9", slots=2)

    claimed, statements = a_pass()

    assert claimed == []
    assert len(statements) == 1, statements


def test_a_free_slot_and_a_queued_task_make_a_claim():
    add_pool("p1", "http://127.0.0.1:9", slots=2, active_leases=1)
    queued_task("t-go", timezone.now()).save()

    claimed, _ = a_pass()

    assert claimed == ["t-go"]
    assert Task.objects.get(id="t-go").state == TaskState.DISPATCHED
    assert Pool.objects.get(id="p1").active_leases == 2


def test_a_free_slot_placement_cannot_use_still_claims_nothing():
    pool = add_pool("p1", "http://127.0.0.1:9", slots=2)
    pool.node.status = NodeStatus.OFFLINE
    pool.node.save()
    queued_task("t-wait", timezone.now()).save()

    claimed, statements = a_pass()

    assert claimed == []
    assert len(statements) > 1, "the look found a free slot, so the pass went on to placement"
    assert Task.objects.get(id="t-wait").state == TaskState.QUEUED
