"""The rest of the console: catalog availability, token spend and budgets, audited session budget edits."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from catalog.models import CatalogModel
from orchestrator.audit.models import AuditEvent
from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token
from orchestrator.sessions.models import Session
from orchestrator.sessions.services import open_session_turn
from tests.console.conftest import make_pool

pytestmark = pytest.mark.django_db


def test_the_catalog_list_shows_where_each_model_is_served(olivia):
    CatalogModel.objects.create(id="tiny")
    CatalogModel.objects.create(id="lonely")
    make_pool("p1", model_refs=["tiny"], slots_total=4, slots_free=3)
    make_pool("p2", model_refs=["tiny"], ready=False)

    page = olivia.get(reverse("admin:catalog_catalogmodel_changelist")).content.decode()

    assert "1/2 pools ready · 3/8 slots free" in page
    assert "not served" in page


def test_a_catalog_entry_page_names_its_nodes_and_pools(olivia):
    CatalogModel.objects.create(id="tiny")
    make_pool("p1", node_id="gpu-7", model_refs=["tiny"])

    page = olivia.get(reverse("admin:catalog_catalogmodel_change", args=["tiny"])).content.decode()

    assert "nodes: gpu-7; pools: p1" in page


def test_the_token_list_shows_spend_against_budgets(olivia):
    token = issue_token("ci", Role.CLIENT).token
    token.tokens_budget, token.tokens_spent, token.cost_budget, token.requests_per_minute = 1000, 120, Decimal(100), 60
    token.save()

    page = olivia.get(reverse("admin:orchd_auth_apitoken_changelist")).content.decode()

    assert "120 / 1000 tokens · cost 0 / 100 · 60 rpm" in page


def test_a_session_budget_edit_is_audited(olivia):
    open_session_turn("s-1", timezone.now())

    response = olivia.post(
        reverse("admin:orchd_sessions_session_change", args=["s-1"]),
        {"tokens_budget": "500", "time_budget_ms": "", "cost_budget": ""},
    )

    assert response.status_code == 302, response.content.decode()[:1000]
    assert Session.objects.get(id="s-1").tokens_budget == 500
    event = AuditEvent.objects.get(action="session.budgets")
    assert (event.actor, event.target_id, event.details["tokens_budget"]) == ("olivia", "s-1", 500)
