"""Sessions in the admin: TTL badges, live/expired filter, editable budgets only."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from orchestrator.sessions.models import Session
from orchestrator.sessions.services import open_session_turn, record_session_spend
from tests.sessions.conftest import NOW

CHANGELIST = reverse("admin:orchd_sessions_session_changelist")


def change_url(session_id: str) -> str:
    return reverse("admin:orchd_sessions_session_change", args=[session_id])


@pytest.fixture
def one_live_one_expired(db):
    open_session_turn("s-old", NOW - timedelta(hours=1))
    open_session_turn("s-live", NOW)


def test_it_lists_sessions_with_ttl_badges(client, admin_user, one_live_one_expired):
    # Logged in on the travelled clock: a login from the real clock would have expired by then.
    with time_machine.travel(NOW + timedelta(seconds=30), tick=False):
        client.force_login(admin_user)
        page = client.get(CHANGELIST).content.decode()

    assert "live · 9m 30s" in page
    assert "expired" in page
    assert "∞" in page


def test_it_filters_live_and_expired(client, admin_user, one_live_one_expired):
    with time_machine.travel(NOW, tick=False):
        client.force_login(admin_user)
        live = client.get(CHANGELIST, {"state": "live"})
        expired = client.get(CHANGELIST, {"state": "expired"})

    assert [s.pk for s in live.context["cl"].result_list] == ["s-live"]
    assert [s.pk for s in expired.context["cl"].result_list] == ["s-old"]


def test_it_searches_by_id(admin_client, one_live_one_expired):
    response = admin_client.get(CHANGELIST, {"q": "live"})

    assert [s.pk for s in response.context["cl"].result_list] == ["s-live"]


def test_it_saves_budgets_without_overwriting_counters(admin_client, one_live_one_expired):
    # given the form was loaded, then a task finished and spent
    admin_client.get(change_url("s-live"))
    record_session_spend("s-live", tokens=42, decode_ms=7, cost=Decimal("0.5"))

    # when the operator saves new budgets (the form also posts nothing else)
    response = admin_client.post(
        change_url("s-live"), {"tokens_budget": "1000", "time_budget_ms": "", "cost_budget": "3.25"}
    )

    # then budgets changed and the spend survived
    assert response.status_code == 302
    session = Session.objects.get(pk="s-live")
    assert (session.tokens_budget, session.time_budget_ms, session.cost_budget) == (1000, None, Decimal("3.25"))
    assert (session.tokens_spent, session.time_spent_ms, session.cost_spent) == (42, 7, Decimal("0.5"))
    assert session.turns == 1


def test_it_does_not_let_operators_add_sessions(admin_client):
    assert admin_client.get(reverse("admin:orchd_sessions_session_add")).status_code == 403
