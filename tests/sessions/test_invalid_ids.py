"""Ids that can't be ids (SPEC §1) are a 404 in a path, never a crash."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.conftest import assert_envelope

INVALID_IDS = ["x" * 129, "has space", "semi;colon", "ümlaut", "star*", "new\nline"]


@pytest.mark.django_db
@pytest.mark.parametrize("session_id", INVALID_IDS)
def test_it_answers_404_for_an_invalid_id(bob, session_id):
    assert_envelope(bob.get(f"/v2/sessions/{quote(session_id)}"), 404, "NOT_FOUND")


@pytest.mark.django_db
@pytest.mark.parametrize("session_id", INVALID_IDS)
def test_it_answers_404_when_deleting_an_invalid_id(bob, session_id):
    assert_envelope(bob.delete(f"/v2/sessions/{quote(session_id)}"), 404, "NOT_FOUND")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v2/sessions/", "/v2/sessions/a/b", "/v2/sessions/%2F"])
def test_it_answers_404_for_paths_without_one_id(bob, path):
    assert_envelope(bob.get(path), 404, "NOT_FOUND")


@pytest.mark.django_db
def test_it_accepts_the_longest_valid_id(bob):
    assert bob.delete("/v2/sessions/" + "a" * 128).status_code == 204
    assert_envelope(bob.get("/v2/sessions/" + "a" * 128), 404, "NOT_FOUND")
