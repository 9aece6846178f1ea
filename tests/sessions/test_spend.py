"""`record_session_spend()` adds with F-expressions: interleaved spenders lose nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orchestrator.sessions.models import Session
from orchestrator.sessions.services import open_session_turn, record_session_spend
from tests.sessions.conftest import NOW


@pytest.mark.django_db
def test_it_adds_every_spend_even_from_stale_copies():
    open_session_turn("s-spend", NOW)
    # given several "workers" that each loaded the session before any of them wrote
    copies = [Session.objects.get(pk="s-spend") for _ in range(5)]

    # when each records its task's spend
    for index, copy in enumerate(copies, start=1):
        record_session_spend(copy.pk, tokens=10 * index, decode_ms=index, cost=Decimal("0.001") * index)

    # then the totals are the exact sums: no read-modify-write in Python
    session = Session.objects.get(pk="s-spend")
    assert session.tokens_spent == 150
    assert session.time_spent_ms == 15
    assert session.cost_spent == Decimal("0.015")


@pytest.mark.django_db(transaction=True)
def test_it_adds_every_spend_from_concurrent_threads():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    open_session_turn("s-threads", NOW)

    def spend(_: int) -> bool:
        try:
            return record_session_spend("s-threads", tokens=3, decode_ms=2, cost=Decimal("0.5"))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(spend, range(40)))

    session = Session.objects.get(pk="s-threads")
    assert all(results)
    assert (session.tokens_spent, session.time_spent_ms, session.cost_spent) == (120, 80, Decimal("20"))


@pytest.mark.django_db
def test_it_reports_a_missing_session():
    assert record_session_spend("s-missing", tokens=1, decode_ms=1, cost=Decimal(0)) is False


@pytest.mark.django_db
def test_it_refuses_negative_spend():
    open_session_turn("s-neg", NOW)

    with pytest.raises(ValueError, match="negative"):
        record_session_spend("s-neg", tokens=-1, decode_ms=0, cost=Decimal(0))
