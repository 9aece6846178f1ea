import pytest

from nodes.models import Node, NodeStatus
from orchestrator.auth.models import ApiToken, Role
from orchestrator.auth.services import issue_token
from pools.models import Pool
from tests.conftest import assert_envelope
from tests.nodes.bodies import pool_spec, registration

pytestmark = pytest.mark.django_db


def test_it_registers_a_node_and_its_pools(alice):
    response = alice.post("/v2/nodes/register", registration())

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert body["node_id"] == "gpu-1"
    assert body["heartbeat_interval_ms"] == 10000
    node = Node.objects.get(id="gpu-1")
    assert node.status == NodeStatus.REGISTERING
    pool = Pool.objects.get(id="p1")
    assert (pool.node_id, pool.engine, pool.slots_total, pool.model_refs) == ("gpu-1", "llamacpp", 4, ["llama-3-8b"])
    assert pool.ready is False, "readiness comes from heartbeats, not registration"


def test_an_operator_registration_issues_a_bound_node_token_once(alice, api):
    first = alice.post("/v2/nodes/register", registration()).json()
    second = alice.post("/v2/nodes/register", registration()).json()

    assert first["node_token"].startswith("orchd_")
    assert "node_token" not in second
    token = ApiToken.objects.get(role=Role.NODE)
    assert token.node_id == "gpu-1"
    # the issued token can heartbeat for its own node
    response = api.as_token(first["node_token"]).post("/v2/nodes/gpu-1/heartbeat", {"pools": []})
    assert response.status_code == 200


def test_re_registering_is_idempotent_and_updates(alice):
    alice.post("/v2/nodes/register", registration())

    response = alice.post("/v2/nodes/register", registration(version="0.2.0", pools=[pool_spec(slots_total=8)]))

    assert response.status_code == 200
    assert Node.objects.count() == 1
    assert Node.objects.get().version == "0.2.0"
    assert Pool.objects.get().slots_total == 8


def test_re_registering_drops_pools_the_node_no_longer_has(alice):
    alice.post("/v2/nodes/register", registration(pools=[pool_spec("p1"), pool_spec("p2")]))

    alice.post("/v2/nodes/register", registration(pools=[pool_spec("p2")]))

    assert list(Pool.objects.values_list("id", flat=True)) == ["p2"]


def test_two_nodes_claiming_one_pool_is_a_conflict(alice):
    alice.post("/v2/nodes/register", registration("gpu-1"))

    response = alice.post("/v2/nodes/register", registration("gpu-2"))

    assert_envelope(response, 409, "CONFLICT")
    assert Pool.objects.get(id="p1").node_id == "gpu-1"
    assert not Node.objects.filter(id="gpu-2").exists(), "a refused registration changes nothing"


def test_a_node_token_binds_to_the_first_node_it_registers(api):
    token = issue_token("agent", Role.NODE).value

    assert api.as_token(token).post("/v2/nodes/register", registration("gpu-1")).status_code == 200
    other = api.as_token(token).post("/v2/nodes/register", registration("gpu-2", pools=[pool_spec("p9")]))

    assert ApiToken.objects.get(name="agent").node_id == "gpu-1"
    assert_envelope(other, 403, "FORBIDDEN")


def test_a_client_token_cannot_register(bob):
    assert_envelope(bob.post("/v2/nodes/register", registration()), 403, "FORBIDDEN")


def test_registration_without_a_token_is_401(api, alice_token):
    assert_envelope(api.post("/v2/nodes/register", registration()), 401, "MISSING_TOKEN")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (registration(node_id="x" * 129), "node_id"),
        (registration(node_id="../etc"), "node_id"),
        (registration(node_id=5), "node_id"),
        (registration(pools=[pool_spec(engine="ollama")]), "pools"),
        (registration(pools=[pool_spec(slots_total=0)]), "pools"),
        (registration(pools=[pool_spec(slots_total=-1)]), "pools"),
        (registration(pools=[pool_spec(slots_total="4")]), "pools"),
        (registration(pools=[pool_spec(engine_url="file:///etc/passwd")]), "pools"),
        (registration(pools=[pool_spec(models=["../../etc/passwd"])]), "pools"),
        (registration(pools=[pool_spec(pool_id="a b")]), "pools"),
        (registration(pools="p1"), "pools"),
        ({"pools": []}, "node_id"),
    ],
)
def test_invalid_registrations_are_400_naming_the_field(alice, body, field):
    envelope = assert_envelope(alice.post("/v2/nodes/register", body), 400, "INVALID_PARAMS")

    assert field in envelope["details"]
    assert Node.objects.count() == 0


def test_duplicate_pool_ids_in_one_registration_are_refused(alice):
    response = alice.post("/v2/nodes/register", registration(pools=[pool_spec("p1"), pool_spec("p1")]))

    assert_envelope(response, 400, "INVALID_PARAMS")


def test_malformed_json_is_400(alice):
    assert_envelope(alice.post("/v2/nodes/register", raw=b'{"node_id": "gpu-1",'), 400, "INVALID_PARAMS")


def test_a_huge_payload_is_refused_without_a_500(alice, settings):
    settings.ORCHD_MAX_REQUEST_BYTES = 64 * 1024
    body = registration(pools=[pool_spec(f"p{i}", models=[f"m{j}" for j in range(200)]) for i in range(64)])

    response = alice.post("/v2/nodes/register", body)

    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert Node.objects.count() == 0


def test_too_many_pools_is_400(alice):
    body = registration(pools=[pool_spec(f"p{i}") for i in range(65)])

    assert_envelope(alice.post("/v2/nodes/register", body), 400, "INVALID_PARAMS")


def test_re_registering_a_serving_node_keeps_it_online_and_its_pools_ready(alice, api):
    token = alice.post("/v2/nodes/register", registration()).json()["node_token"]
    api.as_token(token).post("/v2/nodes/gpu-1/heartbeat", {"pools": [{"pool_id": "p1", "ready": True}]})

    api.as_token(token).post("/v2/nodes/register", registration())

    assert Node.objects.get(id="gpu-1").status == "online"
    assert Pool.objects.get(id="p1").ready is True


def test_an_unbound_node_token_may_register_but_not_act_for_other_nodes(api, alice):
    alice.post("/v2/nodes/register", registration("victim", pools=[pool_spec("pv")]))
    fresh = issue_token("fresh", Role.NODE).value

    assert_envelope(api.as_token(fresh).delete("/v2/nodes/victim"), 403, "FORBIDDEN")
    assert_envelope(api.as_token(fresh).post("/v2/nodes/victim/heartbeat", {"pools": []}), 403, "FORBIDDEN")
    assert Node.objects.filter(id="victim").exists()
