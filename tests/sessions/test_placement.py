"""`kv_warmth`: true at a task's first token on a pool, false once placed elsewhere (SPEC §4)."""

from __future__ import annotations

import pytest

from orchestrator.sessions.models import Session
from orchestrator.sessions.services import mark_session_warm, open_session_turn, record_session_placement
from tests.sessions.conftest import NOW


def session() -> Session:
    return Session.objects.get(pk="s-kv")


@pytest.mark.django_db
def test_it_warms_at_the_first_token_on_the_placed_pool():
    open_session_turn("s-kv", NOW)
    record_session_placement("s-kv", "pool-a")
    assert session().kv_warmth is False

    mark_session_warm("s-kv", "pool-a")

    assert session().kv_warmth is True
    assert session().last_pool_id == "pool-a"


@pytest.mark.django_db
def test_it_stays_warm_when_placed_on_the_same_pool():
    open_session_turn("s-kv", NOW)
    record_session_placement("s-kv", "pool-a")
    mark_session_warm("s-kv", "pool-a")

    record_session_placement("s-kv", "pool-a")

    assert session().kv_warmth is True


@pytest.mark.django_db
def test_it_turns_cold_when_placed_elsewhere():
    open_session_turn("s-kv", NOW)
    record_session_placement("s-kv", "pool-a")
    mark_session_warm("s-kv", "pool-a")

    record_session_placement("s-kv", "pool-b")

    assert session().kv_warmth is False
    assert session().last_pool_id == "pool-b"


@pytest.mark.django_db
def test_it_ignores_a_late_first_token_from_the_previous_pool():
    open_session_turn("s-kv", NOW)
    record_session_placement("s-kv", "pool-a")
    record_session_placement("s-kv", "pool-b")

    assert mark_session_warm("s-kv", "pool-a") is False
    assert session().kv_warmth is False
