"""GET /v2/catalog/models/{id}."""

from __future__ import annotations

import pytest

from tests.catalog.conftest import DIGEST_A
from tests.conftest import assert_envelope


def test_it_returns_one_entry(bob, make_model):
    make_model("llama-3-8b", digest=DIGEST_A)

    response = bob.get("/v2/catalog/models/llama-3-8b")

    assert response.status_code == 200
    assert response.json()["digest"] == DIGEST_A


def test_it_finds_ids_with_slashes(bob, make_model):
    make_model("hf:org/repo/file.gguf")

    response = bob.get("/v2/catalog/models/hf:org/repo/file.gguf")

    assert response.status_code == 200
    assert response.json()["id"] == "hf:org/repo/file.gguf"


def test_it_answers_404_for_an_unknown_model(bob):
    body = assert_envelope(bob.get("/v2/catalog/models/nope"), 404, "NOT_FOUND")

    assert "nope" in body["message"]


@pytest.mark.parametrize(
    "bad_id",
    ["a/../b", "..", "/etc/passwd", "a%5Cb", "x" * 129, "a//b", "sp%20ace"],
)
def test_it_answers_404_for_an_invalid_id_in_the_path(bob, bad_id):
    assert_envelope(bob.get(f"/v2/catalog/models/{bad_id}"), 404, "NOT_FOUND")
