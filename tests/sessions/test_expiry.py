"""An expired session counts as absent, before and after the purge job removes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from orchestrator.sessions.models import Session
from orchestrator.sessions.services import get_live_session, open_session_turn
from tests.conftest import assert_envelope
from tests.sessions.conftest import NOW

TTL = timedelta(milliseconds=600_000)


@pytest.mark.django_db
def test_it_answers_404_once_the_ttl_has_passed(bob):
    open_session_turn("s-exp", NOW)

    with time_machine.travel(NOW + TTL - timedelta(milliseconds=1), tick=False):
        still_live = bob.get("/v2/sessions/s-exp")
    with time_machine.travel(NOW + TTL, tick=False):
        expired = bob.get("/v2/sessions/s-exp")

    assert still_live.status_code == 200
    assert still_live.json()["ttl_ms_remaining"] == 1
    assert_envelope(expired, 404, "NOT_FOUND")
    assert Session.objects.filter(pk="s-exp").exists(), "the row stays until the purge job runs"


@pytest.mark.django_db
def test_it_does_not_return_expired_sessions_from_the_service():
    open_session_turn("s-exp", NOW)

    assert get_live_session("s-exp", NOW + TTL - timedelta(seconds=1)) is not None
    assert get_live_session("s-exp", NOW + TTL) is None


@pytest.mark.django_db
def test_it_honours_the_configured_ttl(settings):
    settings.ORCHD_SESSION_TTL_MS = 5_000

    session = open_session_turn("s-short", NOW)

    assert session.expires_at == NOW + timedelta(seconds=5)
    assert session.ttl_ms_remaining(NOW + timedelta(seconds=2)) == 3_000
    assert session.ttl_ms_remaining(NOW + timedelta(hours=1)) == 0
