"""DELETE /v2/catalog/models/{id}."""

from __future__ import annotations

from catalog.models import CatalogModel, ModelTag, VerificationRun
from catalog.services import request_verification
from tests.conftest import assert_envelope


def test_it_deletes_the_entry_and_its_history(alice, make_model):
    model = make_model("m", tags=["chat"])
    request_verification(model)

    response = alice.delete("/v2/catalog/models/m")

    assert response.status_code == 204
    assert response.content == b""
    assert response.has_header("X-Correlation-Id")
    assert not CatalogModel.objects.filter(pk="m").exists()
    assert not ModelTag.objects.exists()
    assert not VerificationRun.objects.exists()


def test_it_never_deletes_the_model_file(alice, make_model, model_file):
    path = model_file("m", b"weights")
    make_model("m")

    alice.delete("/v2/catalog/models/m")

    assert path.read_bytes() == b"weights"


def test_it_answers_404_for_an_unknown_model(alice):
    assert_envelope(alice.delete("/v2/catalog/models/nope"), 404, "NOT_FOUND")


def test_it_answers_404_the_second_time(alice, make_model):
    make_model("m")
    alice.delete("/v2/catalog/models/m")

    assert_envelope(alice.delete("/v2/catalog/models/m"), 404, "NOT_FOUND")
