"""Pool actions in the console: each asks first, calls the API's service, and shows its progress."""

from __future__ import annotations

import pytest
from django.urls import reverse

from catalog.models import CatalogModel, ModelState
from orchestrator.audit.models import AuditEvent
from pools.models import Pool, ReloadState
from tests.console.conftest import make_pool

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:pools_pool_changelist")


def act(client, action, pool_ids, **form):
    return client.post(CHANGELIST, {"action": action, "_selected_action": pool_ids, **form}, follow=True)


def confirm(client, action, pool_ids, **form):
    return act(client, action, pool_ids, confirm="yes", **form)


def test_drain_first_asks_for_a_deadline_and_changes_nothing(olivia):
    make_pool("p1")

    page = act(olivia, "drain", ["p1"]).content.decode()

    assert 'name="deadline_s"' in page
    assert 'name="confirm" value="yes"' in page
    assert Pool.objects.get(id="p1").desired_draining is False


def test_a_confirmed_drain_sets_the_deadline_and_shows_progress(olivia):
    make_pool("p1", active_leases=2)

    response = confirm(olivia, "drain", ["p1"], deadline_s="90")

    pool = Pool.objects.get(id="p1")
    assert pool.desired_draining is True
    assert pool.drain_deadline_at is not None
    assert pool.drain_started_at is not None
    assert (pool.drain_deadline_at - pool.drain_started_at).total_seconds() == 90
    assert "Draining 1 pool(s)" in response.content.decode()
    assert "draining: 2 task(s) still running, deadline in" in response.content.decode()


def test_a_bad_deadline_is_asked_again(olivia):
    make_pool("p1")

    page = confirm(olivia, "drain", ["p1"], deadline_s="-5").content.decode()

    assert "greater than or equal to 0" in page
    assert Pool.objects.get(id="p1").desired_draining is False


def test_undrain_is_confirmed_then_reverses_the_drain(olivia):
    make_pool("p1", desired_draining=True)

    assert Pool.objects.get(id="p1").desired_draining is True
    assert "take new tasks again" in act(olivia, "undrain", ["p1"]).content.decode()
    confirm(olivia, "undrain", ["p1"])

    assert Pool.objects.get(id="p1").desired_draining is False


def test_the_reload_picker_offers_only_active_catalog_models(olivia):
    make_pool("p1")
    CatalogModel.objects.create(id="llama-new")
    CatalogModel.objects.create(id="llama-old", state=ModelState.RETIRED)

    page = act(olivia, "reload", ["p1"]).content.decode()

    assert 'value="llama-new"' in page
    assert "llama-old" not in page


def test_a_confirmed_reload_is_pending_and_visible(olivia):
    make_pool("p1")
    CatalogModel.objects.create(id="llama-new")

    page = confirm(olivia, "reload", ["p1"], model="llama-new").content.decode()

    pool = Pool.objects.get(id="p1")
    assert pool.reload_state == ReloadState.PENDING
    assert pool.desired_model_ref == "llama-new"
    assert "reload to llama-new pending since" in page


def test_a_reload_the_service_refuses_is_an_error_message_and_an_audit_event(olivia):
    make_pool("p1", reload_state=ReloadState.PENDING, reload_model_ref="x")
    CatalogModel.objects.create(id="llama-new")

    page = confirm(olivia, "reload", ["p1"], model="llama-new").content.decode()

    assert "already pending" in page
    event = AuditEvent.objects.get(action="pool.reload")
    assert (event.outcome, event.details["error"]) == ("refused", "CONFLICT")


def test_purge_sends_the_options_to_the_agent(olivia):
    make_pool("p1")

    confirm(olivia, "purge", ["p1"], purge_engine="on", purge_models="a, b", drain_first="on")

    request = Pool.objects.get(id="p1").purge_request
    assert request is not None
    assert request["purge_engine"] is True
    assert request["purge_models"] == ["a", "b"]
    assert Pool.objects.get(id="p1").desired_draining is True


def test_the_pool_page_shows_reload_and_drain_progress(olivia):
    make_pool("p1", desired_draining=True, reload_state=ReloadState.FAILED, reload_model_ref="m", reload_error="oom")

    page = olivia.get(reverse("admin:pools_pool_change", args=["p1"])).content.decode()

    assert "reload to m failed: oom" in page
    assert "draining: 0 task(s) still running" in page
