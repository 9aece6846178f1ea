"""`GET /v2/artifacts/{id}`: the stored document plus id, digest and created_ms; 404 otherwise."""

from __future__ import annotations

import time

import pytest

from tests.conftest import assert_envelope


@pytest.mark.django_db
def test_it_returns_the_stored_document(bob):
    before_ms = int(time.time() * 1000)
    body = {"kind": "plan", "content": {"steps": ["a", "b"]}, "tags": ["y", "x"], "parent": "sha256:abc"}
    created = bob.post("/v2/artifacts", body).json()

    response = bob.get(f"/v2/artifacts/{created['id']}")

    assert response.status_code == 200
    assert response.json() == {
        "id": created["id"],
        "digest": created["id"],
        "created_ms": created["created_ms"],
        "kind": "plan",
        "content": {"steps": ["a", "b"]},
        "tags": ["x", "y"],
        "parent": "sha256:abc",
        "metadata": {},
    }
    assert before_ms - 1000 <= created["created_ms"] <= int(time.time() * 1000) + 1000


@pytest.mark.django_db
def test_it_keeps_numbers_exactly_as_hashed(bob):
    content = {"float": 100.0, "exp": 1e100, "small": 1.5e-7, "int": 7, "big": 2**70}
    created = bob.post("/v2/artifacts", {"kind": "other", "content": content, "metadata": {"f": 1.0}}).json()

    document = bob.get(f"/v2/artifacts/{created['id']}").json()

    assert document["content"] == content
    assert isinstance(document["content"]["float"], float)
    assert isinstance(document["metadata"]["f"], float)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "artifact_id",
    [
        "sha256:" + "0" * 64,  # well-formed, unknown
        "sha256:" + "A" * 64,  # upper-case hex is not how ids are written
        "sha256:abc",
        "md5:" + "0" * 32,
        "not-an-id",
        "x" * 300,
    ],
)
def test_it_answers_404_for_unknown_or_malformed_ids(bob, artifact_id):
    response = bob.get(f"/v2/artifacts/{artifact_id}")

    assert_envelope(response, 404, "NOT_FOUND")


@pytest.mark.django_db
def test_it_answers_404_for_a_path_with_a_slash(bob):
    assert_envelope(bob.get("/v2/artifacts/sha256:abc/extra"), 404, "NOT_FOUND")
