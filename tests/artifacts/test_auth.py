"""Artifacts are client endpoints: a bearer token is required (SPEC §2)."""

from __future__ import annotations

import pytest

from tests.conftest import assert_envelope

ARTIFACT_ID = "sha256:" + "0" * 64


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/v2/artifacts"), ("post", "/v2/artifacts"), ("get", f"/v2/artifacts/{ARTIFACT_ID}")],
)
def test_it_requires_a_token(api, bob_token, method, path):
    response = getattr(api, method)(path)

    assert_envelope(response, 401, "MISSING_TOKEN")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/v2/artifacts"), ("post", "/v2/artifacts"), ("get", f"/v2/artifacts/{ARTIFACT_ID}")],
)
def test_it_refuses_an_unknown_token(charlie, method, path):
    response = getattr(charlie, method)(path)

    assert_envelope(response, 401, "BAD_TOKEN")


@pytest.mark.django_db
def test_it_lets_operators_in_too(alice):
    response = alice.post("/v2/artifacts", {"kind": "plan", "content": {}})

    assert response.status_code == 201
