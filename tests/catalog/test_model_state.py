"""POST /v2/catalog/models/{id}/state: Active <-> Retired, with an optional deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from catalog.models import CatalogModel, ModelState
from catalog.services import set_model_state
from tests.conftest import assert_envelope

URL = "/v2/catalog/models/m/state"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_it_retires_a_model_and_answers_with_the_entry(alice, make_model):
    make_model("m")

    response = alice.post(URL, {"state": "Retired"})

    assert response.status_code == 202
    assert response.json()["state"] == "Retired"
    assert response.json()["id"] == "m"
    assert CatalogModel.objects.retired().filter(pk="m").exists()


def test_it_records_the_retire_deadline(alice, make_model):
    make_model("m")

    with time_machine.travel(NOW, tick=False):
        alice.post(URL, {"state": "Retired", "deadline_ms": 30_000})

    assert CatalogModel.objects.get(pk="m").retire_deadline_at == NOW + timedelta(seconds=30)


def test_it_reactivates_a_model_and_clears_the_deadline(alice, make_model):
    set_model_state(make_model("m"), ModelState.RETIRED, deadline_ms=1000)

    response = alice.post(URL, {"state": "Active"})

    assert response.json()["state"] == "Active"
    assert CatalogModel.objects.get(pk="m").retire_deadline_at is None


def test_it_refuses_a_deadline_when_activating(alice, make_model):
    make_model("m")

    body = assert_envelope(alice.post(URL, {"state": "Active", "deadline_ms": 1000}), 400, "INVALID_PARAMS")

    assert "deadline_ms" in body["details"]


@pytest.mark.parametrize("deadline_ms", [0, -5, 1.5, "1000", True])
def test_it_refuses_a_bad_deadline(alice, make_model, deadline_ms):
    make_model("m")

    body = assert_envelope(alice.post(URL, {"state": "Retired", "deadline_ms": deadline_ms}), 400, "INVALID_PARAMS")

    assert "deadline_ms" in body["details"]


def test_it_refuses_an_unknown_state_naming_the_field(alice, make_model):
    make_model("m")

    body = assert_envelope(alice.post(URL, {"state": "Deprecated"}), 400, "INVALID_PARAMS")

    assert "state" in body["details"]


def test_it_answers_404_for_an_unknown_model(alice):
    assert_envelope(alice.post("/v2/catalog/models/nope/state", {"state": "Retired"}), 404, "NOT_FOUND")


def test_it_is_a_no_op_to_repeat_the_current_state(make_model):
    model = make_model("m")
    before = CatalogModel.objects.get(pk="m").updated_at

    set_model_state(model, ModelState.ACTIVE)

    assert CatalogModel.objects.get(pk="m").updated_at == before


def test_it_moves_the_deadline_when_retiring_again_with_one(make_model):
    model = make_model("m")
    with time_machine.travel(NOW, tick=False):
        set_model_state(model, ModelState.RETIRED, deadline_ms=60_000)
        set_model_state(model, ModelState.RETIRED, deadline_ms=5_000)

    assert CatalogModel.objects.get(pk="m").retire_deadline_at == NOW + timedelta(seconds=5)


def test_it_refuses_an_unknown_state_in_the_service(make_model):
    with pytest.raises(ValueError, match="unknown model state"):
        set_model_state(make_model("m"), "Deprecated")
