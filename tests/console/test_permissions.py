"""Two groups from a migration: viewers look, operators act. A viewer cannot drain a pool."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import CatalogModel
from nodes.models import Node
from orchestrator.sessions.models import Session
from orchestrator.sessions.services import open_session_turn
from orchestrator.tasks.models import Task, TaskState
from pools.models import Pool
from tests.console.conftest import make_pool, make_task, staff_user

pytestmark = pytest.mark.django_db

ACTIONS = {
    "pools_pool": {"drain", "undrain", "reload", "purge"},
    "nodes_node": {"deregister"},
    "tasks_task": {"cancel"},
    "catalog_catalogmodel": {"verify", "retire", "activate"},
}


def action_names(client, name):
    response = client.get(reverse(f"admin:{name}_changelist"))
    assert response.status_code == 200
    form = response.context.get("action_form")
    return set() if form is None else {value for value, _ in form.fields["action"].choices if value}


def test_the_migration_creates_both_groups(groups):
    viewers = {perm.codename for perm in groups["viewers"].permissions.all()}
    operators = {perm.codename for perm in groups["operators"].permissions.all()}

    assert {"view_pool", "view_task", "view_auditevent", "view_periodictask"} <= viewers
    assert all(codename.startswith("view_") for codename in viewers)
    assert viewers <= operators
    assert {"drain_pool", "reload_pool", "purge_pool", "deregister_node", "change_task", "retire_model"} <= operators


@pytest.mark.parametrize("name", ACTIONS)
def test_operators_see_the_actions(olivia, name):
    make_pool("p1")

    assert action_names(olivia, name) >= ACTIONS[name]


@pytest.mark.parametrize("name", ACTIONS)
def test_viewers_see_the_pages_but_no_actions(victor, name):
    make_pool("p1")

    assert action_names(victor, name) == set()


def test_a_viewer_cannot_drain_a_pool_even_by_forging_the_post(victor):
    make_pool("p1")

    for form in ({"action": "drain", "index": "0"}, {"action": "drain", "confirm": "yes", "deadline_s": "5"}):
        victor.post(reverse("admin:pools_pool_changelist"), {"_selected_action": ["p1"], **form})

    assert Pool.objects.get(id="p1").desired_draining is False


def test_a_viewer_cannot_cancel_deregister_or_retire_either(victor):
    make_pool("p1", node_id="gpu-1")
    make_task("t-1")
    CatalogModel.objects.create(id="m")
    forged = {"confirm": "yes"}

    for name, action, selected in (
        ("tasks_task", "cancel", "t-1"),
        ("nodes_node", "deregister", "gpu-1"),
        ("catalog_catalogmodel", "retire", "m"),
    ):
        victor.post(reverse(f"admin:{name}_changelist"), {"action": action, "_selected_action": [selected], **forged})

    assert Task.objects.get(id="t-1").state == TaskState.QUEUED
    assert Node.objects.filter(id="gpu-1").exists()
    assert CatalogModel.objects.get(id="m").state == "Active"


def test_a_viewer_sees_the_dashboard_and_the_audit_log(victor):
    assert victor.get(reverse("admin:index")).status_code == 200
    assert victor.get(reverse("admin:audit_auditevent_changelist")).status_code == 200


def test_a_viewer_cannot_edit_a_session_budget_or_create_a_token(victor):
    open_session_turn("s-1", timezone.now())

    edit = victor.post(reverse("admin:orchd_sessions_session_change", args=["s-1"]), {"tokens_budget": "5"})

    assert edit.status_code == 403
    assert Session.objects.get(id="s-1").tokens_budget is None
    assert victor.get(reverse("admin:orchd_auth_apitoken_add")).status_code == 403


def test_the_live_view_offers_cancel_to_operators_only(client, groups):
    make_task("t-1", TaskState.RUNNING)
    url = reverse("admin:tasks_task_live", args=["t-1"])

    client.force_login(staff_user("olivia", groups["operators"]))
    assert b'id="live-cancel"' in client.get(url).content

    client.force_login(staff_user("victor", groups["viewers"]))
    page = client.get(url)
    assert page.status_code == 200
    assert b'id="live-cancel"' not in page.content
