"""Admin list pages issue a bounded number of queries, however many rows they show."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import CatalogModel
from nodes.models import Node, NodeStatus
from orchestrator.artifacts.services import store_artifact
from orchestrator.audit.services import Source, record
from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token
from orchestrator.sessions.services import open_session_turn
from orchestrator.tasks.models import TaskState
from tests.console.conftest import make_pool, make_task

pytestmark = pytest.mark.django_db

ROWS = 110
# Session, user, the user's and its groups' permissions, the page, filter choices, date hierarchy:
# 6 to 11 today, whatever the number of rows (an N+1 would add at least 100).
MAX_QUERIES = 12


def fill_pools():
    for number in range(ROWS):
        make_pool(f"p-{number:03}", node_id=f"gpu-{number % 40:02}", active_leases=number % 4)


def fill_nodes():
    for number in range(ROWS):
        Node.objects.create(id=f"gpu-{number:03}", status=NodeStatus.ONLINE, last_heartbeat_at=timezone.now())


def fill_tasks():
    for number in range(ROWS):
        make_task(f"t-{number:03}", TaskState.FAILED, error={"code": "WORKER_RESET"}, pool_id=f"p-{number % 5}")


def fill_models():
    for number in range(ROWS):
        CatalogModel.objects.create(id=f"m-{number:03}")
    fill_pools()


def fill_tokens():
    for number in range(ROWS):
        issue_token(f"tok-{number}", Role.CLIENT)


def fill_sessions():
    for number in range(ROWS):
        open_session_turn(f"s-{number:03}", timezone.now() - timedelta(seconds=number))


def fill_audit():
    for number in range(ROWS):
        record("olivia", "pool.drain", ("pools.pool", f"p-{number}"), source=Source.ADMIN, deadline_ms=number)


def fill_artifacts():
    for number in range(ROWS):
        store_artifact("plan", {"n": number}, tags=[f"t{number}"])


@pytest.mark.parametrize(
    ("name", "fill"),
    [
        ("pools_pool", fill_pools),
        ("nodes_node", fill_nodes),
        ("tasks_task", fill_tasks),
        ("catalog_catalogmodel", fill_models),
        ("orchd_auth_apitoken", fill_tokens),
        ("orchd_sessions_session", fill_sessions),
        ("audit_auditevent", fill_audit),
        ("artifacts_artifact", fill_artifacts),
    ],
)
def test_a_list_of_over_a_hundred_rows_takes_a_bounded_number_of_queries(
    olivia, django_assert_max_num_queries, name, fill
):
    fill()

    with django_assert_max_num_queries(MAX_QUERIES):
        response = olivia.get(reverse(f"admin:{name}_changelist"))

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 100
