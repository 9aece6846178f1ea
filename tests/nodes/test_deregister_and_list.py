import pytest

from nodes.models import Node
from pools.models import Pool
from tests.conftest import assert_envelope
from tests.nodes.bodies import heartbeat, registration

pytestmark = pytest.mark.django_db


def test_deregistering_removes_the_node_and_its_pools(alice):
    alice.post("/v2/nodes/register", registration())

    response = alice.delete("/v2/nodes/gpu-1")

    assert response.status_code == 204
    assert response.has_header("X-Correlation-Id")
    assert not Node.objects.exists()
    assert not Pool.objects.exists()


def test_deregistering_an_unknown_node_is_404(alice):
    assert_envelope(alice.delete("/v2/nodes/nope"), 404, "NOT_FOUND")


def test_a_node_may_deregister_itself(api, alice):
    token = alice.post("/v2/nodes/register", registration()).json()["node_token"]

    assert api.as_token(token).delete("/v2/nodes/gpu-1").status_code == 204


def test_the_list_shows_status_heartbeat_and_pools(alice, api):
    token = alice.post("/v2/nodes/register", registration()).json()["node_token"]
    api.as_token(token).post("/v2/nodes/gpu-1/heartbeat", heartbeat())

    body = alice.get("/v2/nodes").json()

    assert body["count"] == 1
    node = body["nodes"][0]
    assert node["node_id"] == "gpu-1"
    assert node["status"] == "online"
    assert isinstance(node["last_heartbeat_ms"], int)
    assert node["version"] == "0.1.0"
    assert [pool["pool_id"] for pool in node["pools"]] == ["p1"]


def test_get_one_node(alice):
    alice.post("/v2/nodes/register", registration())

    assert alice.get("/v2/nodes/gpu-1").json()["node_id"] == "gpu-1"
    assert_envelope(alice.get("/v2/nodes/nope"), 404, "NOT_FOUND")


def test_listing_nodes_needs_an_operator(bob):
    assert_envelope(bob.get("/v2/nodes"), 403, "FORBIDDEN")


def test_listing_nodes_is_a_bounded_number_of_queries(alice, django_assert_max_num_queries):
    for i in range(20):
        alice.post(
            "/v2/nodes/register", registration(f"gpu-{i}", pools=[{**registration()["pools"][0], "pool_id": f"p{i}"}])
        )

    with django_assert_max_num_queries(6):
        assert alice.get("/v2/nodes").json()["count"] == 20
