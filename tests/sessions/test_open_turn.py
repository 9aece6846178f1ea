"""`open_session_turn()`: created on first use; every later turn counts and renews the TTL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest

from orchestrator.sessions import services
from orchestrator.sessions.models import Session
from orchestrator.sessions.services import TurnLimitReached, open_session_turn, record_session_spend
from tests.sessions.conftest import NOW

TTL = timedelta(milliseconds=600_000)


@pytest.fixture(autouse=True, params=["one upsert", "in steps"])
def way(request, monkeypatch):
    """Every test both ways: one statement where the database has RETURNING, else up to four."""
    if request.param == "in steps":
        monkeypatch.setattr(services, "_returns_rows", lambda: False)
    return request.param


@pytest.mark.django_db
def test_it_creates_the_session_on_first_use():
    session = open_session_turn("s-new", NOW)

    assert session.turns == 1
    assert session.created_at == NOW
    assert session.expires_at == NOW + TTL
    assert Session.objects.count() == 1


@pytest.mark.django_db
def test_it_counts_turns_and_renews_the_ttl():
    open_session_turn("s-turns", NOW)
    later = NOW + timedelta(minutes=5)

    session = open_session_turn("s-turns", later)

    assert session.turns == 2
    assert session.created_at == NOW
    assert session.expires_at == later + TTL


@pytest.mark.django_db
def test_it_never_shortens_the_ttl_from_a_lagging_clock():
    later = NOW + timedelta(minutes=5)
    open_session_turn("s-skew", later)

    session = open_session_turn("s-skew", later - timedelta(seconds=2))

    assert session.turns == 2
    assert session.expires_at == later + TTL


@pytest.mark.django_db
def test_it_starts_an_expired_session_afresh(settings):
    settings.ORCHD_SESSION_TOKENS_BUDGET = 100
    open_session_turn("s-old", NOW)
    open_session_turn("s-old", NOW)
    record_session_spend("s-old", tokens=40, decode_ms=10, cost=Decimal("0.1"))
    after_expiry = NOW + TTL

    session = open_session_turn("s-old", after_expiry)

    assert session.turns == 1
    assert session.created_at == after_expiry
    assert session.tokens_spent == 0
    assert session.tokens_budget_remaining == 100


@pytest.mark.django_db
def test_it_counts_every_turn_of_interleaved_calls():
    for minute in range(10):
        open_session_turn("s-many", NOW + timedelta(seconds=minute))

    assert Session.objects.get(pk="s-many").turns == 10


@pytest.mark.django_db
def test_it_refuses_a_turn_beyond_the_limit(settings):
    settings.ORCHD_SESSION_MAX_TURNS = 2
    open_session_turn("s-limit", NOW)
    open_session_turn("s-limit", NOW)

    with pytest.raises(TurnLimitReached) as raised:
        open_session_turn("s-limit", NOW)

    assert raised.value.max_turns == 2
    session = Session.objects.get(pk="s-limit")
    assert session.turns == 2
    assert session.expires_at == NOW + TTL


@pytest.mark.django_db
def test_it_lets_the_caller_override_the_limit():
    open_session_turn("s-one", NOW, max_turns=1)

    with pytest.raises(TurnLimitReached):
        open_session_turn("s-one", NOW, max_turns=1)


@pytest.mark.django_db
def test_it_allows_a_new_session_after_an_exhausted_one_expired(settings):
    settings.ORCHD_SESSION_MAX_TURNS = 1
    open_session_turn("s-limit", NOW)

    session = open_session_turn("s-limit", NOW + TTL)

    assert session.turns == 1


@pytest.mark.django_db
def test_it_renews_a_session_created_by_a_racing_process(way):
    if way == "one upsert":
        pytest.skip("one statement: no other process's insert can land between its steps")
    real_create = services._create

    def create_after_a_rival(session_id, now, expires_at):
        real_create(session_id, now, expires_at)  # the rival's insert lands first
        return real_create(session_id, now, expires_at)  # ours then hits the primary key

    # when another process creates the session between our renew and our insert
    with mock.patch.object(services, "_create", side_effect=create_after_a_rival):
        session = open_session_turn("s-race", NOW)

    # then our turn is counted on the rival's session
    assert session.turns == 2
    assert Session.objects.count() == 1


@pytest.mark.django_db
def test_it_logs_a_start_once_even_when_turns_share_an_instant(caplog):
    with caplog.at_level("INFO", logger="orchestrator.sessions"):
        open_session_turn("s-log", NOW)
        open_session_turn("s-log", NOW)  # a renewal at the creating instant
        open_session_turn("s-log", NOW + TTL)  # expired: started afresh

    assert [record.msg for record in caplog.records] == ["session.started", "session.started"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_turns_are_all_counted_and_an_expired_session_restarts_once():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections, transaction

    open_session_turn("s-old", NOW - TTL)  # expired at NOW

    def turn(session_id: str) -> int:
        try:
            with transaction.atomic():  # as admission opens its turn
                return open_session_turn(session_id, NOW).turns
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        seen = list(pool.map(turn, ["s-new", "s-old"] * 20))

    for session_id in ("s-new", "s-old"):
        session = Session.objects.get(pk=session_id)
        assert (session.turns, session.created_at) == (20, NOW), session_id
    # Each turn saw its own count: none lost, and exactly one start per session.
    assert sorted(seen) == sorted([*range(1, 21), *range(1, 21)])
