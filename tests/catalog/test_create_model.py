"""POST /v2/catalog/models: adding entries."""

from __future__ import annotations

from datetime import datetime, timedelta

from catalog.models import CatalogModel, ModelTag
from tests.catalog.conftest import DIGEST_A, DIGEST_B
from tests.conftest import assert_envelope

URL = "/v2/catalog/models"

FULL_ENTRY = {
    "id": "hf:meta/llama-3/8b.gguf",
    "digest": DIGEST_A,
    "source_url": "https://huggingface.co/meta/llama-3",
    "tags": ["chat", "8b"],
    "manifests": [{"digest": DIGEST_B, "size_bytes": 123}],
    "signatures": [{"signer": "release-team", "algo": "ed25519", "value": "AAAA", "timestamp_ms": 5}],
    "sbom": {"uri": "https://example.com/sbom.json", "digest": DIGEST_B},
    "trust_policy": {
        "mode": "strict",
        "allowed_registries": ["https://huggingface.co"],
        "require_signature": True,
        "require_sbom": True,
    },
    "ctx_max": 8192,
    "cost_per_1k_tokens": 0.25,
}


def test_it_creates_an_entry_with_every_field(alice):
    # when
    response = alice.post(URL, FULL_ENTRY)

    # then
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] == FULL_ENTRY["id"]
    assert body["digest"] == DIGEST_A
    assert body["source_url"] == FULL_ENTRY["source_url"]
    assert body["tags"] == ["chat", "8b"]
    assert body["manifests"] == FULL_ENTRY["manifests"]
    assert body["signatures"] == [
        {"signer": "release-team", "algo": "ed25519", "value": "AAAA", "timestamp_ms": 5, "verified": False}
    ]
    assert body["sbom"] == FULL_ENTRY["sbom"]
    assert body["trust_policy"] == FULL_ENTRY["trust_policy"]
    assert body["state"] == "Active"
    assert body["verification"] == {"status": "unverified", "checked_at": None, "reason": None}
    assert body["last_verified_ms"] is None
    assert body["ctx_max"] == 8192
    assert body["cost_per_1k_tokens"] == 0.25
    assert datetime.fromisoformat(body["created_at"]).utcoffset() == timedelta(0)
    assert body["created_at"].endswith("Z")
    assert CatalogModel.objects.filter(pk=FULL_ENTRY["id"]).exists()


def test_it_fills_defaults_for_a_bare_id(alice):
    response = alice.post(URL, {"id": "llama-3-8b"})

    assert response.status_code == 201
    body = response.json()
    assert body["digest"] == ""
    assert body["tags"] == []
    assert body["manifests"] == []
    assert body["signatures"] == []
    assert body["sbom"] is None
    assert body["trust_policy"] == {
        "mode": "permissive",
        "allowed_registries": [],
        "require_signature": False,
        "require_sbom": False,
    }
    assert body["ctx_max"] is None
    assert body["cost_per_1k_tokens"] == 0


def test_it_never_takes_the_clients_word_that_a_signature_is_verified(alice):
    signature = {"signer": "x", "algo": "ed25519", "value": "AAAA", "verified": True}

    response = alice.post(URL, {"id": "m", "signatures": [signature]})

    assert response.json()["signatures"][0]["verified"] is False


def test_it_says_id_required_when_the_id_is_missing(alice):
    body = assert_envelope(alice.post(URL, {"digest": DIGEST_A}), 400, "INVALID_PARAMS")

    assert body["message"] == "id required"
    assert "id" in body["details"]


def test_it_says_id_required_when_the_id_is_empty(alice):
    body = assert_envelope(alice.post(URL, {"id": ""}), 400, "INVALID_PARAMS")

    assert body["message"] == "id required"


def test_it_refuses_an_existing_id_with_conflict(alice, make_model):
    # given
    make_model("llama-3-8b", digest=DIGEST_A)

    # when
    response = alice.post(URL, {"id": "llama-3-8b", "digest": DIGEST_B})

    # then
    assert_envelope(response, 409, "CONFLICT")
    assert CatalogModel.objects.get(pk="llama-3-8b").digest == DIGEST_A


def test_it_ignores_unknown_fields(alice):
    response = alice.post(URL, {"id": "m", "colour": "blue", "trust_policy": {"flavour": 1}})

    assert response.status_code == 201
    assert "colour" not in response.json()


def test_it_stores_tags_once_each_in_order(alice):
    response = alice.post(URL, {"id": "m", "tags": ["b", "a", "b"]})

    assert response.json()["tags"] == ["b", "a"]
    assert sorted(ModelTag.objects.filter(model_id="m").values_list("name", flat=True)) == ["a", "b"]


def test_it_creates_a_retired_entry_when_asked(alice):
    response = alice.post(URL, {"id": "m", "state": "Retired"})

    assert response.json()["state"] == "Retired"
