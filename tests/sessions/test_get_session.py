"""`GET /v2/sessions/{id}`: the SPEC's fields of a live session."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from orchestrator.sessions.services import open_session_turn, record_session_placement, record_session_spend
from tests.conftest import assert_envelope
from tests.sessions.conftest import NOW


@pytest.mark.django_db
def test_it_returns_the_fields_of_a_new_session(bob):
    open_session_turn("s-1", NOW)

    with time_machine.travel(NOW + timedelta(seconds=10), tick=False):
        response = bob.get("/v2/sessions/s-1")

    assert response.status_code == 200
    assert response.json() == {
        "session_id": "s-1",
        "ttl_ms_remaining": 590_000,
        "turns": 1,
        "kv_bytes": 0,
        "kv_warmth": False,
        "tokens_budget_remaining": None,
        "time_budget_remaining_ms": None,
        "cost_budget_remaining": None,
        "last_pool_id": None,
    }


@pytest.mark.django_db
def test_it_shows_budgets_and_placement(bob, settings):
    settings.ORCHD_SESSION_TOKENS_BUDGET = 1000
    settings.ORCHD_SESSION_TIME_BUDGET_MS = 60_000
    settings.ORCHD_SESSION_COST_BUDGET = Decimal("2.5")
    open_session_turn("s-2", NOW)
    record_session_spend("s-2", tokens=120, decode_ms=1500, cost=Decimal("0.25"))
    record_session_placement("s-2", "pool-a")

    with time_machine.travel(NOW, tick=False):
        body = bob.get("/v2/sessions/s-2").json()

    assert body["tokens_budget_remaining"] == 880
    assert body["time_budget_remaining_ms"] == 58_500
    assert body["cost_budget_remaining"] == 2.25
    assert isinstance(body["cost_budget_remaining"], float)
    assert body["last_pool_id"] == "pool-a"


@pytest.mark.django_db
def test_it_answers_404_for_an_unknown_session(bob):
    assert_envelope(bob.get("/v2/sessions/never-seen"), 404, "NOT_FOUND")


@pytest.mark.django_db
def test_it_requires_a_token(api, bob_token):
    assert_envelope(api.get("/v2/sessions/s-1"), 401, "MISSING_TOKEN")


@pytest.mark.django_db
def test_it_refuses_an_unknown_token(charlie):
    assert_envelope(charlie.get("/v2/sessions/s-1"), 401, "BAD_TOKEN")
    assert_envelope(charlie.delete("/v2/sessions/s-1"), 401, "BAD_TOKEN")
