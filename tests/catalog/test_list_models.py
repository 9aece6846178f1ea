"""GET /v2/catalog/models: listing with ?state=, ?tag= and pagination."""

from __future__ import annotations

from catalog.models import ModelState
from catalog.services import set_model_state
from tests.conftest import assert_envelope

URL = "/v2/catalog/models"


def ids(response) -> list[str]:
    return [entry["id"] for entry in response.json()["results"]]


def test_it_lists_entries_by_id_in_a_page(bob, make_model):
    make_model("b")
    make_model("a")

    response = bob.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert body["next"] is None
    assert body["previous"] is None
    assert ids(response) == ["a", "b"]


def test_it_paginates_with_limit_and_offset(bob, make_model):
    for name in ("a", "b", "c"):
        make_model(name)

    response = bob.get(f"{URL}?limit=1&offset=1")

    body = response.json()
    assert body["count"] == 3
    assert ids(response) == ["b"]
    assert "offset=2" in body["next"]


def test_it_filters_by_state(bob, make_model):
    make_model("kept")
    set_model_state(make_model("gone"), ModelState.RETIRED)

    assert ids(bob.get(f"{URL}?state=Retired")) == ["gone"]
    assert ids(bob.get(f"{URL}?state=Active")) == ["kept"]


def test_it_filters_by_tag_exactly(bob, make_model):
    make_model("a", tags=["chat", "8b"])
    make_model("b", tags=["chat-v2"])
    make_model("c", tags=["Chat"])

    assert ids(bob.get(f"{URL}?tag=chat")) == ["a"]
    assert ids(bob.get(f"{URL}?tag=8b")) == ["a"]
    assert ids(bob.get(f"{URL}?tag=none")) == []


def test_it_combines_filters(bob, make_model):
    make_model("a", tags=["chat"])
    set_model_state(make_model("b", tags=["chat"]), ModelState.RETIRED)

    assert ids(bob.get(f"{URL}?tag=chat&state=Retired")) == ["b"]


def test_it_refuses_an_unknown_state_filter(bob):
    body = assert_envelope(bob.get(f"{URL}?state=retired"), 400, "INVALID_PARAMS")

    assert "state" in body["details"]


def test_it_lists_without_a_query_per_entry(bob, make_model, django_assert_max_num_queries):
    for index in range(10):
        make_model(f"m{index}", tags=["x"])

    # auth, count, page
    with django_assert_max_num_queries(4):
        assert bob.get(URL).status_code == 200


def test_it_treats_empty_filters_as_no_filter(bob, make_model):
    make_model("a", tags=["chat"])
    make_model("b")

    assert ids(bob.get(f"{URL}?state=&tag=")) == ["a", "b"]
