"""Who may call what: reads need a client token, writes an operator token (SPEC §2)."""

from __future__ import annotations

import pytest

from tests.conftest import assert_envelope

READS = [
    ("GET", "/v2/catalog/models"),
    ("GET", "/v2/catalog/models/m"),
    ("GET", "/v2/catalog/availability"),
]
WRITES = [
    ("POST", "/v2/catalog/models", {"id": "new"}),
    ("PUT", "/v2/catalog/models/m", {"digest": ""}),
    ("DELETE", "/v2/catalog/models/m", None),
    ("POST", "/v2/catalog/models/m/verify", None),
    ("POST", "/v2/catalog/models/m/state", {"state": "Retired"}),
]
EVERYTHING = [(method, path, None) for method, path in READS] + WRITES


@pytest.fixture
def entry(make_model):
    return make_model("m")


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_it_forbids_writes_to_a_client(bob, entry, method, path, body):
    response = bob.call(method, path, body)

    assert_envelope(response, 403, "FORBIDDEN")


@pytest.mark.parametrize(("method", "path"), READS)
def test_it_lets_a_client_read(bob, entry, method, path):
    assert bob.call(method, path).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), EVERYTHING)
def test_it_wants_a_token_from_anonymous_callers(api, alice_token, entry, method, path, body):
    # alice's token exists, so dev mode is off
    response = api.call(method, path, body)

    assert_envelope(response, 401, "MISSING_TOKEN")


@pytest.mark.parametrize(("method", "path", "body"), EVERYTHING)
def test_it_refuses_a_made_up_token(charlie, entry, method, path, body):
    assert_envelope(charlie.call(method, path, body), 401, "BAD_TOKEN")


def test_it_lets_an_operator_write(alice, entry):
    assert alice.post("/v2/catalog/models/m/state", {"state": "Retired"}).status_code == 202
