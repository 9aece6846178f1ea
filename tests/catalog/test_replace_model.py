"""PUT /v2/catalog/models/{id}: create-or-replace."""

from __future__ import annotations

from catalog.models import CatalogModel, ModelState, ModelTag, VerificationStatus
from catalog.services import replace_model, request_verification, set_model_state
from catalog.types import ModelSpec
from tests.catalog.conftest import DIGEST_A, DIGEST_B
from tests.conftest import assert_envelope


def url(model_id: str) -> str:
    return f"/v2/catalog/models/{model_id}"


def test_it_replaces_every_operator_field(alice, make_model):
    # given
    make_model("m", digest=DIGEST_A, tags=["old"], ctx_max=4096)

    # when
    response = alice.put(url("m"), {"tags": ["new"], "cost_per_1k_tokens": 1.5})

    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["digest"] == ""
    assert body["tags"] == ["new"]
    assert body["ctx_max"] is None
    assert body["cost_per_1k_tokens"] == 1.5
    assert list(ModelTag.objects.filter(model_id="m").values_list("name", flat=True)) == ["new"]


def test_it_creates_the_entry_when_it_does_not_exist(alice):
    response = alice.put(url("hf:org/repo/file.gguf"), {"digest": DIGEST_A})

    assert response.status_code == 201
    assert response.json()["id"] == "hf:org/repo/file.gguf"
    assert CatalogModel.objects.get(pk="hf:org/repo/file.gguf").digest == DIGEST_A


def test_it_accepts_a_body_id_equal_to_the_path(alice, make_model):
    make_model("m")

    assert alice.put(url("m"), {"id": "m"}).status_code == 200


def test_it_refuses_a_body_id_that_differs_from_the_path(alice, make_model):
    make_model("m")

    body = assert_envelope(alice.put(url("m"), {"id": "other"}), 400, "INVALID_PARAMS")

    assert "id" in body["details"]
    assert not CatalogModel.objects.filter(pk="other").exists()


def test_it_answers_404_for_an_invalid_id_in_the_path(alice):
    assert_envelope(alice.put(url("a/../b"), {}), 404, "NOT_FOUND")


def test_it_keeps_the_state_when_the_body_omits_it(alice, make_model):
    # given a retired entry
    model = make_model("m")
    set_model_state(model, ModelState.RETIRED)

    # when
    response = alice.put(url("m"), {"digest": DIGEST_A})

    # then a PUT can't un-retire a model by accident
    assert response.json()["state"] == "Retired"


def test_it_changes_the_state_when_the_body_names_one(alice, make_model):
    model = make_model("m")
    set_model_state(model, ModelState.RETIRED, deadline_ms=1000)

    response = alice.put(url("m"), {"state": "Active"})

    assert response.json()["state"] == "Active"
    assert CatalogModel.objects.get(pk="m").retire_deadline_at is None


def test_it_resets_verification_when_the_digest_changes(make_model):
    # given an entry with a finished verification
    model = make_model("m", digest=DIGEST_A)
    CatalogModel.objects.filter(pk="m").update(verification_status=VerificationStatus.PASSED, verification_reason="x")

    # when
    replaced = replace_model(model, ModelSpec(id="m", digest=DIGEST_B))

    # then
    assert replaced.verification_status == VerificationStatus.UNVERIFIED
    assert replaced.verification_reason == ""
    assert replaced.verification_job_id is None


def test_it_keeps_verification_when_only_descriptive_fields_change(make_model):
    model = make_model("m", digest=DIGEST_A)
    CatalogModel.objects.filter(pk="m").update(verification_status=VerificationStatus.PASSED)

    replaced = replace_model(model, ModelSpec(id="m", digest=DIGEST_A, tags=["chat"], ctx_max=2048))

    assert replaced.verification_status == VerificationStatus.PASSED
    assert replaced.tags == ["chat"]


def test_it_disowns_a_running_verification_when_the_digest_changes(make_model):
    # given a verification in flight
    model = make_model("m", digest=DIGEST_A)
    run = request_verification(model)

    # when
    replace_model(model, ModelSpec(id="m", digest=DIGEST_B))

    # then the old run can no longer write its outcome onto the entry
    assert CatalogModel.objects.get(pk="m").verification_job_id != run.id
