"""GET /v2/catalog/availability: what pools on online nodes serve."""

from __future__ import annotations

from catalog.models import ModelState
from catalog.services import availability, set_model_state
from nodes.models import NodeStatus

URL = "/v2/catalog/availability"


def row(result, model_id):
    return next(item for item in result["models"] if item["model_id"] == model_id)


def test_it_sums_pools_per_model_over_online_nodes(make_pool):
    # given
    make_pool("p1", node_id="n1", models=["llama"], slots_total=4, slots_free=1)
    make_pool("p2", node_id="n2", models=["llama", "qwen"], slots_total=2, slots_free=2)

    # when
    result = availability()

    # then
    assert row(result, "llama") == {
        "model_id": "llama",
        "nodes": ["n1", "n2"],
        "pools": ["p1", "p2"],
        "ready_pools": 2,
        "total_slots": 6,
        "free_slots": 3,
    }
    assert row(result, "qwen")["nodes"] == ["n2"]
    assert result["total_models"] == 2
    assert result["replicated_models"] == ["llama"]
    assert result["single_node_models"] == ["qwen"]


def test_it_leaves_out_pools_on_offline_and_stale_nodes(make_pool):
    make_pool("p1", node_id="up", models=["llama"])
    make_pool("p2", node_id="down", node_status=NodeStatus.OFFLINE, models=["llama", "gone"])
    make_pool("p3", node_id="late", node_status=NodeStatus.STALE, models=["llama"])

    result = availability()

    assert [item["model_id"] for item in result["models"]] == ["llama"]
    assert row(result, "llama")["nodes"] == ["up"]
    assert result["replicated_models"] == []
    assert result["single_node_models"] == ["llama"]


def test_it_counts_two_pools_on_one_node_as_one_node(make_pool):
    make_pool("p1", node_id="n1", models=["llama"])
    make_pool("p2", node_id="n1", models=["llama"])

    result = availability()

    assert row(result, "llama")["nodes"] == ["n1"]
    assert row(result, "llama")["pools"] == ["p1", "p2"]
    assert result["replicated_models"] == []


def test_it_counts_free_slots_only_of_pools_that_take_tasks(make_pool):
    make_pool("ready", node_id="n1", models=["llama"], slots_total=2, slots_free=2)
    make_pool("warming", node_id="n1", models=["llama"], slots_total=2, slots_free=2, ready=False)
    make_pool("draining", node_id="n1", models=["llama"], slots_total=2, slots_free=2, desired_draining=True)

    item = row(availability(), "llama")

    assert item["ready_pools"] == 1
    assert item["total_slots"] == 6
    assert item["free_slots"] == 2


def test_it_lists_served_models_that_are_not_in_the_catalog(make_pool, make_model):
    make_model("catalogued")
    make_pool("p1", models=["uncatalogued"])

    result = availability()

    assert [item["model_id"] for item in result["models"]] == ["catalogued", "uncatalogued"]


def test_it_shows_active_entries_nobody_serves_as_zero(make_model):
    make_model("idle")
    set_model_state(make_model("retired"), ModelState.RETIRED)

    result = availability()

    assert result["models"] == [
        {"model_id": "idle", "nodes": [], "pools": [], "ready_pools": 0, "total_slots": 0, "free_slots": 0}
    ]
    assert result["replicated_models"] == []
    assert result["single_node_models"] == []


def test_it_is_served_to_clients(bob, make_pool):
    make_pool("p1", models=["llama"])

    response = bob.get(URL)

    assert response.status_code == 200
    assert response.json()["models"][0]["model_id"] == "llama"
    assert response.json()["total_models"] == 1


def test_it_answers_an_empty_fleet(bob):
    assert bob.get(URL).json() == {"models": [], "total_models": 0, "replicated_models": [], "single_node_models": []}
