"""`DELETE /v2/sessions/{id}` → 204, idempotent."""

from __future__ import annotations

import pytest

from orchestrator.sessions.models import Session
from orchestrator.sessions.services import delete_session, open_session_turn
from tests.conftest import assert_envelope
from tests.sessions.conftest import NOW


@pytest.mark.django_db
def test_it_deletes_a_session(bob):
    open_session_turn("s-del", NOW)

    response = bob.delete("/v2/sessions/s-del")

    assert response.status_code == 204
    assert response.content == b""
    assert response.has_header("X-Correlation-Id")
    assert not Session.objects.filter(pk="s-del").exists()


@pytest.mark.django_db
def test_it_answers_204_for_an_unknown_session(bob):
    assert bob.delete("/v2/sessions/never-seen").status_code == 204


@pytest.mark.django_db
def test_it_answers_204_when_deleting_twice(bob):
    open_session_turn("s-twice", NOW)

    first = bob.delete("/v2/sessions/s-twice")
    second = bob.delete("/v2/sessions/s-twice")

    assert first.status_code == second.status_code == 204


@pytest.mark.django_db
def test_it_starts_afresh_after_a_delete(bob):
    open_session_turn("s-again", NOW)
    open_session_turn("s-again", NOW)
    bob.delete("/v2/sessions/s-again")

    session = open_session_turn("s-again", NOW)

    assert session.turns == 1


@pytest.mark.django_db
def test_it_reports_whether_the_service_deleted_anything():
    open_session_turn("s-svc", NOW)

    assert delete_session("s-svc") is True
    assert delete_session("s-svc") is False


@pytest.mark.django_db
def test_it_requires_a_token(api, bob_token):
    assert_envelope(api.delete("/v2/sessions/s-1"), 401, "MISSING_TOKEN")
