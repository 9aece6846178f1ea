"""Tasks in the console: filters, a confirmed cancel, and the live view with its session-authenticated stream."""

from __future__ import annotations

import uuid
import warnings

import pytest
from django.urls import reverse

from orchestrator.audit.models import AuditEvent
from orchestrator.tasks.models import Task, TaskState
from tests.console.conftest import make_task, staff_user

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:tasks_task_changelist")


def live_url(task_id):
    return reverse("admin:tasks_task_live", args=[task_id])


def read_events(client, task_id, **headers):
    response = client.get(f"/v2/tasks/{task_id}/events", headers=headers)
    if response.status_code != 200:
        return response, ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sync test client consumes the async stream, and says so
        return response, b"".join(response).decode()


def listed(client, query):
    return [task.id for task in client.get(CHANGELIST + query).context["cl"].result_list]


def test_it_filters_by_state_priority_model_and_pool(olivia):
    make_task("t-a", TaskState.RUNNING, pool_id="p1", model_ref="m1")
    make_task("t-b", priority="batch", model_ref="m2")

    assert listed(olivia, "?state__exact=running") == ["t-a"]
    assert listed(olivia, "?priority__exact=batch") == ["t-b"]
    assert listed(olivia, "?model_ref=m2") == ["t-b"]
    assert listed(olivia, "?pool_id=p1") == ["t-a"]


def test_cancel_asks_first_then_cancels_through_the_service(olivia):
    # A fresh id: the event log (Redis, in the PostgreSQL run) outlives a test, and an
    # earlier test's `t-1` may have left a terminal frame there, which makes a cancel a no-op.
    task_id = f"t-{uuid.uuid4().hex[:8]}"
    make_task(task_id)

    question = olivia.post(CHANGELIST, {"action": "cancel", "_selected_action": [task_id]})
    assert b"Queued tasks leave the queue" in question.content
    assert Task.objects.get(id=task_id).state == TaskState.QUEUED

    olivia.post(CHANGELIST, {"action": "cancel", "_selected_action": [task_id], "confirm": "yes"})

    task = Task.objects.get(id=task_id)
    assert (task.state, task.cancel_reason) == (TaskState.CANCELED, "client")
    event = AuditEvent.objects.get(action="task.cancel")
    assert (event.actor, event.source, event.outcome) == ("olivia", "admin", "success")


def test_cancelling_a_finished_task_changes_nothing_and_says_so(olivia):
    make_task("t-done", TaskState.COMPLETED)

    page = olivia.post(
        CHANGELIST, {"action": "cancel", "_selected_action": ["t-done"], "confirm": "yes"}, follow=True
    ).content.decode()

    assert Task.objects.get(id="t-done").state == TaskState.COMPLETED
    assert "Canceled 0 task(s). (1 unchanged)" in page
    assert AuditEvent.objects.get(action="task.cancel").outcome == "noop"


def test_the_live_view_tails_the_stream_with_event_source(olivia):
    make_task("t-live", TaskState.RUNNING, pool_id="p1")

    page = olivia.get(live_url("t-live")).content.decode()

    assert 'data-events-url="/v2/tasks/t-live/events"' in page
    assert "/static/console/live.js" in page
    assert 'id="live-cancel"' in page


def test_the_live_view_of_an_unknown_task_is_404(olivia):
    assert olivia.get(live_url("nope")).status_code == 404


def test_every_task_links_to_its_live_view(olivia):
    make_task("t-1")

    assert live_url("t-1") in olivia.get(CHANGELIST).content.decode()


def test_a_staff_session_may_read_the_stream(victor):
    make_task("t-done", TaskState.COMPLETED, finish_reason="stop")

    response, body = read_events(victor, "t-done")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert "event: end" in body


def test_a_logged_in_user_who_is_not_staff_may_not(client, groups):
    make_task("t-done", TaskState.COMPLETED)
    client.force_login(staff_user("charlie", groups["viewers"], is_staff=False))

    response, _ = read_events(client, "t-done")

    assert response.status_code == 401
    assert response.json()["code"] == "MISSING_TOKEN"


def test_a_bad_bearer_token_is_refused_even_with_a_staff_session(victor, alice_token):
    make_task("t-done", TaskState.COMPLETED)

    response, _ = read_events(victor, "t-done", Authorization="Bearer orchd_not-a-real-token")

    assert response.status_code == 401
    assert response.json()["code"] == "BAD_TOKEN"


def test_bearer_tokens_still_work_without_a_session(client, bob_token):
    make_task("t-done", TaskState.COMPLETED)

    response, body = read_events(client, "t-done", Authorization=f"Bearer {bob_token}")

    assert response.status_code == 200
    assert "event: end" in body
