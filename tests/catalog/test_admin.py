"""The catalog in the admin: list, edit through the services, actions, history, keys."""

from __future__ import annotations

import json

import pytest

from catalog.models import CatalogModel, ModelState, ModelTag, SigningKey, VerificationRun, VerificationStatus
from catalog.services import set_model_state
from tests.catalog.conftest import DIGEST_A

CHANGELIST = "/admin/catalog/catalogmodel/"


def form_data(**overrides):
    data = {
        "id": "m",
        "digest": "",
        "source_url": "",
        "tags": "[]",
        "manifests": "[]",
        "signatures": "[]",
        "sbom": "null",
        "trust_policy": json.dumps({"mode": "permissive"}),
        "ctx_max": "",
        "cost_per_1k_tokens": "0",
        "verification_runs-TOTAL_FORMS": "0",
        "verification_runs-INITIAL_FORMS": "0",
    }
    return {**data, **overrides}


def test_it_lists_entries_with_a_verification_badge(admin_client, make_model):
    make_model("llama", digest=DIGEST_A)

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    page = response.content.decode()
    assert "llama" in page
    assert "unverified" in page
    assert "sha256:aaaaaaaaaaaa…" in page


def test_it_filters_and_searches(admin_client, make_model):
    make_model("llama")
    make_model("qwen")

    assert b"qwen" not in admin_client.get(CHANGELIST + "?q=llama").content
    assert admin_client.get(CHANGELIST + "?verification_status__exact=passed").status_code == 200


def test_it_shows_the_verification_history_read_only(admin_client, make_model):
    model = make_model("m")
    VerificationRun.objects.create(model=model, status=VerificationStatus.FAILED, reason="digest_mismatch")

    response = admin_client.get(f"{CHANGELIST}m/change/")

    assert response.status_code == 200
    assert b"digest_mismatch" in response.content


def test_it_creates_an_entry_through_the_service(admin_client, db):
    response = admin_client.post(CHANGELIST + "add/", form_data(tags='["chat"]', digest=DIGEST_A))

    assert response.status_code == 302, response.content.decode()[:2000]
    model = CatalogModel.objects.get(pk="m")
    assert model.digest == DIGEST_A
    assert list(ModelTag.objects.filter(model=model).values_list("name", flat=True)) == ["chat"]
    assert model.trust_policy["require_signature"] is False


def test_it_refuses_json_the_api_would_refuse(admin_client, db):
    response = admin_client.post(CHANGELIST + "add/", form_data(trust_policy=json.dumps({"mode": "paranoid"})))

    assert response.status_code == 200
    assert b"paranoid" in response.content
    assert not CatalogModel.objects.exists()


def test_it_edits_an_entry_without_touching_its_state(admin_client, make_model):
    set_model_state(make_model("m"), ModelState.RETIRED)

    response = admin_client.post(f"{CHANGELIST}m/change/", form_data(ctx_max="4096", tags='["x"]'))

    assert response.status_code == 302, response.content.decode()[:2000]
    model = CatalogModel.objects.get(pk="m")
    assert model.ctx_max == 4096
    assert model.state == ModelState.RETIRED
    assert model.tags == ["x"]


@pytest.mark.parametrize(
    ("action", "field", "expected"),
    [
        ("retire", "state", ModelState.RETIRED),
        ("verify", "verification_status", VerificationStatus.PENDING),
    ],
)
def test_its_actions_call_the_services(admin_client, make_model, action, field, expected):
    make_model("a")
    make_model("b")

    response = admin_client.post(CHANGELIST, {"action": action, "_selected_action": ["a", "b"]})

    assert response.status_code == 302
    assert set(CatalogModel.objects.values_list(field, flat=True)) == {expected}


def test_it_activates_retired_models(admin_client, make_model):
    set_model_state(make_model("a"), ModelState.RETIRED)

    admin_client.post(CHANGELIST, {"action": "activate", "_selected_action": ["a"]})

    assert CatalogModel.objects.get(pk="a").state == ModelState.ACTIVE


def test_it_queues_one_run_per_model_verified(admin_client, make_model):
    make_model("a")

    admin_client.post(CHANGELIST, {"action": "verify", "_selected_action": ["a"]})

    assert VerificationRun.objects.filter(model_id="a").count() == 1


def test_it_refuses_a_signing_key_that_is_not_ed25519(admin_client, db):
    data = {"signer": "team", "algo": "ed25519", "public_key": "AAAA", "active": "on"}

    response = admin_client.post("/admin/catalog/signingkey/add/", data)

    assert response.status_code == 200
    assert not SigningKey.objects.exists()


def test_it_adds_a_signing_key(admin_client, trusted_signer):
    data = {"signer": "other", "algo": "ed25519", "public_key": trusted_signer.public_b64(), "active": "on"}

    response = admin_client.post("/admin/catalog/signingkey/add/", data)

    assert response.status_code == 302
    assert SigningKey.objects.filter(signer="other").exists()
    assert admin_client.get("/admin/catalog/signingkey/").status_code == 200
