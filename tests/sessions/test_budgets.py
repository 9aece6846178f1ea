"""Budgets start from the ORCHD_SESSION_* defaults; remaining is never negative; None = unlimited."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orchestrator.sessions.models import Session
from orchestrator.sessions.services import open_session_turn, record_session_spend, update_session_budgets
from tests.sessions.conftest import NOW


@pytest.mark.django_db
def test_it_starts_unlimited_without_defaults():
    session = open_session_turn("s-free", NOW)

    assert session.tokens_budget_remaining is None
    assert session.time_budget_remaining_ms is None
    assert session.cost_budget_remaining is None


@pytest.mark.django_db
def test_it_takes_budgets_from_settings(settings):
    settings.ORCHD_SESSION_TOKENS_BUDGET = 5000
    settings.ORCHD_SESSION_TIME_BUDGET_MS = 30_000
    settings.ORCHD_SESSION_COST_BUDGET = Decimal("1.5")

    session = open_session_turn("s-budget", NOW)

    assert session.tokens_budget == 5000
    assert session.tokens_budget_remaining == 5000
    assert session.time_budget_remaining_ms == 30_000
    assert session.cost_budget_remaining == Decimal("1.5")


@pytest.mark.django_db
def test_it_never_reports_a_negative_remainder(settings):
    settings.ORCHD_SESSION_TOKENS_BUDGET = 10
    settings.ORCHD_SESSION_TIME_BUDGET_MS = 10
    settings.ORCHD_SESSION_COST_BUDGET = Decimal("0.01")
    open_session_turn("s-over", NOW)
    record_session_spend("s-over", tokens=50, decode_ms=50, cost=Decimal("1"))

    session = Session.objects.get(pk="s-over")

    assert session.tokens_budget_remaining == 0
    assert session.time_budget_remaining_ms == 0
    assert session.cost_budget_remaining == Decimal(0)


@pytest.mark.django_db
def test_it_keeps_an_existing_sessions_budgets_when_defaults_change(settings):
    settings.ORCHD_SESSION_TOKENS_BUDGET = 100
    open_session_turn("s-keep", NOW)
    settings.ORCHD_SESSION_TOKENS_BUDGET = 5

    session = open_session_turn("s-keep", NOW)

    assert session.tokens_budget == 100


@pytest.mark.django_db
def test_it_updates_budgets_without_touching_counters():
    open_session_turn("s-edit", NOW)
    stale = Session.objects.get(pk="s-edit")
    record_session_spend("s-edit", tokens=7, decode_ms=3, cost=Decimal(0))

    update_session_budgets(stale.pk, tokens_budget=100, time_budget_ms=None, cost_budget=Decimal("2"))

    session = Session.objects.get(pk="s-edit")
    assert session.tokens_budget_remaining == 93
    assert session.cost_budget_remaining == Decimal("2")
    assert session.tokens_spent == 7


@pytest.mark.django_db
def test_it_tells_whether_turns_are_left():
    session = open_session_turn("s-turns", NOW)

    assert session.has_turns_left(0) is True
    assert session.has_turns_left(2) is True
    assert session.has_turns_left(1) is False
