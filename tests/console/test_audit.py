"""Every operator action, from the admin, the API or the command line, is in the audit log."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from catalog.models import CatalogModel
from orchestrator.audit.models import AuditEvent
from orchestrator.audit.services import Source, record
from orchestrator.auth.models import ApiToken
from pools.models import Pool, ReloadState
from tests.console.conftest import make_pool, make_task

pytestmark = pytest.mark.django_db


def label_of(token: str) -> str:
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:6]


def only_event(action: str) -> AuditEvent:
    return AuditEvent.objects.get(action=action)


@pytest.mark.parametrize(
    ("path", "body", "action"),
    [
        ("/v2/pools/p1/drain", {"deadline_ms": 5000}, "pool.drain"),
        ("/v2/pools/p1/undrain", None, "pool.undrain"),
        ("/v2/pools/p1/reload", {"new_model_ref": "m"}, "pool.reload"),
        ("/v2/pools/p1/purge", {"purge_engine": True}, "pool.purge"),
    ],
)
def test_pool_actions_through_the_api_are_recorded_with_the_token(alice, alice_token, path, body, action):
    make_pool("p1")
    CatalogModel.objects.create(id="m")

    response = alice.post(path, body, headers={"X-Correlation-Id": "req-42"})

    assert response.status_code == 202, response.content
    event = only_event(action)
    assert (event.actor, event.source, event.outcome) == (label_of(alice_token), "api", "success")
    assert (event.target_type, event.target_id, event.correlation_id) == ("pools.pool", "p1", "req-42")


def test_a_refused_api_reload_is_recorded_as_refused(alice):
    make_pool("p1", reload_state=ReloadState.PENDING)
    CatalogModel.objects.create(id="m")

    assert alice.post("/v2/pools/p1/reload", {"new_model_ref": "m"}).status_code == 409

    event = only_event("pool.reload")
    assert (event.outcome, event.details) == ("refused", {"model_ref": "m", "error": "CONFLICT"})


def test_retire_verify_and_delete_through_the_api_are_recorded(alice):
    CatalogModel.objects.create(id="m")

    alice.post("/v2/catalog/models/m/state", {"state": "Retired"})
    alice.post("/v2/catalog/models/m/verify")
    alice.delete("/v2/catalog/models/m")

    assert list(AuditEvent.objects.order_by("id").values_list("action", "target_id", "outcome")) == [
        ("model.retire", "m", "success"),
        ("model.verify", "m", "success"),
        ("model.delete", "m", "success"),
    ]


def test_cancel_through_the_api_is_recorded_by_whoever_asked(bob, bob_token):
    make_task("t-1")

    assert bob.post("/v2/tasks/t-1/cancel").status_code == 204
    assert bob.post("/v2/tasks/t-1/cancel").status_code == 204

    outcomes = list(AuditEvent.objects.order_by("id").values_list("actor", "outcome"))
    assert outcomes == [(label_of(bob_token), "success"), (label_of(bob_token), "noop")]


def test_deregister_through_the_api_is_recorded(alice):
    make_pool("p1", node_id="gpu-1")

    assert alice.delete("/v2/nodes/gpu-1").status_code == 204

    assert (only_event("node.deregister").target_id, only_event("node.deregister").outcome) == ("gpu-1", "success")


def test_tokens_created_and_revoked_in_the_admin_are_recorded(admin_client):
    admin_client.post(reverse("admin:orchd_auth_apitoken_add"), {"name": "ci", "role": "client", "node_id": ""})
    token = ApiToken.objects.get(name="ci")

    admin_client.post(
        reverse("admin:orchd_auth_apitoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]}
    )

    created, revoked = only_event("token.create"), only_event("token.revoke")
    assert (created.actor, created.source) == ("admin", "admin")
    assert created.details["fingerprint"] == f"token:{token.fingerprint}"
    assert (revoked.target_id, revoked.outcome) == (str(token.pk), "success")
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_a_token_made_by_the_command_is_recorded(db):
    call_command("create_token", "--role", "operator", "--name", "ops", stdout=io.StringIO(), stderr=io.StringIO())

    event = only_event("token.create")
    assert (event.actor, event.source, event.details["role"]) == ("cli", "cli", "operator")


def test_a_failure_to_record_never_stops_the_action(olivia, monkeypatch):
    make_pool("p1")

    def broken(**fields):
        raise RuntimeError("audit table is gone")

    monkeypatch.setattr(AuditEvent.objects, "create", broken)
    olivia.post(
        reverse("admin:pools_pool_changelist"), {"action": "drain", "_selected_action": ["p1"], "confirm": "yes"}
    )

    assert Pool.objects.get(id="p1").desired_draining is True
    assert not AuditEvent.objects.exists()


def test_the_audit_log_is_filterable_and_read_only(olivia):
    record("olivia", "pool.drain", ("pools.pool", "p1"), source=Source.ADMIN)
    record("token:abcdef", "task.cancel", ("tasks.task", "t-1"), source=Source.API)
    changelist = reverse("admin:audit_auditevent_changelist")

    by_source = olivia.get(changelist + "?source__exact=api").context["cl"].result_list
    by_actor = olivia.get(changelist + "?q=olivia").context["cl"].result_list

    assert [event.action for event in by_source] == ["task.cancel"]
    assert [event.action for event in by_actor] == ["pool.drain"]
    event = AuditEvent.objects.get(action="pool.drain")
    assert olivia.post(reverse("admin:audit_auditevent_change", args=[event.pk]), {}).status_code == 403
