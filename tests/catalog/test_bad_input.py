"""Malformed bodies are 400 INVALID_PARAMS envelopes naming the fields, never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from catalog.models import CatalogModel
from tests.catalog.conftest import DIGEST_A
from tests.conftest import assert_envelope

URL = "/v2/catalog/models"


def details_of(alice, body) -> dict[str, Any]:
    details: dict[str, Any] = assert_envelope(alice.post(URL, body), 400, "INVALID_PARAMS")["details"]
    return details


@pytest.mark.parametrize("raw", ["{", "[]", '"id"', "", "{'id': 'x'}", '{"id": NaN}', b"\xff\xfe"])
def test_it_refuses_a_body_that_is_not_a_json_object(alice, raw):
    assert_envelope(alice.post(URL, raw=raw), 400, "INVALID_PARAMS")


def test_it_refuses_a_body_that_is_not_json_at_all(alice):
    response = alice.post(URL, raw="id=x", content_type="application/x-www-form-urlencoded")

    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    "bad_id",
    ["x" * 129, "a/../b", "../etc", "/abs", "back\\slash", "a//b", "trailing/", "sp ace", "é"],
)
def test_it_refuses_invalid_ids(alice, bad_id):
    assert "id" in details_of(alice, {"id": bad_id})
    assert not CatalogModel.objects.exists()


def test_it_accepts_an_id_of_exactly_128_characters(alice):
    assert alice.post(URL, {"id": "x" * 128}).status_code == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", 5),
        ("digest", "sha256:" + "A" * 64),
        ("digest", "md5:abc"),
        ("digest", "sha256:" + "a" * 63),
        ("digest", 12),
        ("source_url", "not a url"),
        ("source_url", ["https://x"]),
        ("tags", "chat"),
        ("tags", [1, 2]),
        ("tags", ["has space"]),
        ("tags", [f"t{n}" for n in range(65)]),
        ("manifests", {"digest": DIGEST_A}),
        ("manifests", [{"digest": DIGEST_A}]),
        ("manifests", [{"digest": DIGEST_A, "size_bytes": "12"}]),
        ("manifests", [{"digest": DIGEST_A, "size_bytes": -1}]),
        ("signatures", [{"signer": "s", "algo": "rsa", "value": "AAAA"}]),
        ("signatures", [{"signer": "s", "algo": "ed25519", "value": "not base64!"}]),
        ("signatures", [{"algo": "ed25519", "value": "AAAA"}]),
        ("sbom", "https://sbom"),
        ("sbom", {"uri": "https://sbom"}),
        ("trust_policy", "strict"),
        ("trust_policy", {"mode": "paranoid"}),
        ("trust_policy", {"mode": "Strict"}),
        ("trust_policy", {"require_signature": "yes"}),
        ("trust_policy", {"require_sbom": 1}),
        ("trust_policy", {"allowed_registries": "https://huggingface.co"}),
        ("state", "retired"),
        ("state", True),
        ("ctx_max", "8192"),
        ("ctx_max", 0),
        ("ctx_max", 1.5),
        ("ctx_max", True),
        ("cost_per_1k_tokens", "0.5"),
        ("cost_per_1k_tokens", -1),
        ("cost_per_1k_tokens", False),
    ],
)
def test_it_names_the_field_with_a_wrong_type_or_value(alice, field, value):
    details = details_of(alice, {"id": "m", field: value})

    assert field in details, details
    assert not CatalogModel.objects.exists()


def test_it_names_the_nested_field_and_index(alice):
    details = details_of(alice, {"id": "m", "manifests": [{"digest": DIGEST_A, "size_bytes": 1}, {"digest": "x"}]})

    assert set(details["manifests"]) == {"1"}
    assert set(details["manifests"]["1"]) == {"digest", "size_bytes"}


def test_it_refuses_a_one_megabyte_id(alice):
    body = json.dumps({"id": "x" * (1024 * 1024)})

    details = assert_envelope(alice.post(URL, raw=body), 400, "INVALID_PARAMS")["details"]

    assert "id" in details


def test_it_refuses_a_body_over_the_size_limit(alice, settings):
    settings.ORCHD_MAX_REQUEST_BYTES = 64 * 1024
    body = json.dumps({"id": "m", "tags": ["t"] * (512 * 1024)})

    assert_envelope(alice.post(URL, raw=body), 413, "PAYLOAD_TOO_LARGE")
    assert not CatalogModel.objects.exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"state": "Deprecated"}, {"state": "retired"}, {"state": 1}, {"state": "Retired", "deadline_ms": "5"}],
)
def test_it_refuses_a_bad_state_change(alice, make_model, body):
    make_model("m")

    assert_envelope(alice.post("/v2/catalog/models/m/state", body), 400, "INVALID_PARAMS")
    assert CatalogModel.objects.get(pk="m").state == "Active"


@pytest.mark.parametrize("raw", ["{", "[1]", ""])
def test_it_refuses_a_malformed_state_body(alice, make_model, raw):
    make_model("m")

    assert_envelope(alice.post("/v2/catalog/models/m/state", raw=raw), 400, "INVALID_PARAMS")


@pytest.mark.parametrize("raw", ["{", "null"])
def test_it_refuses_a_malformed_put_body(alice, make_model, raw):
    make_model("m")

    assert_envelope(alice.put("/v2/catalog/models/m", raw=raw), 400, "INVALID_PARAMS")
