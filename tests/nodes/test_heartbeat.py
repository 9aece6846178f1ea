from datetime import timedelta

import pytest
from django.utils import timezone

from nodes.models import Node, NodeStatus
from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token
from pools.models import Pool
from tests.conftest import assert_envelope
from tests.nodes.bodies import heartbeat, pool_spec, registration, report

pytestmark = pytest.mark.django_db


@pytest.fixture
def node_api(api, alice):
    token = alice.post("/v2/nodes/register", registration()).json()["node_token"]
    return api.as_token(token)


def test_a_heartbeat_brings_the_node_online_and_stores_live_state(node_api):
    response = node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat(report(slots_free=3, engine_version="b4100")))

    assert response.status_code == 200, response.content
    node = Node.objects.get(id="gpu-1")
    assert node.status == NodeStatus.ONLINE
    assert node.last_heartbeat_at is not None
    pool = Pool.objects.get(id="p1")
    assert (pool.ready, pool.slots_free, pool.engine_version) == (True, 3, "b4100")


def test_each_heartbeat_stores_the_nodes_own_deadlines(node_api, settings):
    before = timezone.now()

    node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat())

    node = Node.objects.get(id="gpu-1")
    assert node.stale_at is not None
    assert node.offline_at is not None
    assert node.last_heartbeat_at is not None
    assert node.stale_at - node.last_heartbeat_at == timedelta(milliseconds=2 * settings.ORCHD_HEARTBEAT_INTERVAL_MS)
    assert node.offline_at - node.last_heartbeat_at == timedelta(milliseconds=settings.ORCHD_NODE_TIMEOUT_MS)
    assert node.last_heartbeat_at >= before


def test_the_answer_carries_the_desired_state(node_api):
    Pool.objects.filter(id="p1").update(desired_draining=True, desired_model_ref="llama-3-70b")

    body = node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat()).json()

    assert body["success"] is True
    assert body["next_heartbeat_ms"] == 10000
    assert body["pools"] == [
        {"pool_id": "p1", "desired": {"draining": True, "model_ref": "llama-3-70b", "purge": None}}
    ]


def test_a_heartbeat_brings_an_offline_node_back(node_api):
    Node.objects.filter(id="gpu-1").update(status=NodeStatus.OFFLINE)

    node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat())

    assert Node.objects.get(id="gpu-1").status == NodeStatus.ONLINE


def test_an_unknown_node_is_404_so_the_agent_registers_again(alice):
    assert_envelope(alice.post("/v2/nodes/nope/heartbeat", heartbeat()), 404, "NOT_FOUND")


def test_a_heartbeat_after_deregistration_is_404(node_api, alice):
    assert alice.delete("/v2/nodes/gpu-1").status_code == 204

    assert_envelope(node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat()), 404, "NOT_FOUND")


def test_an_unknown_pool_is_refused_and_nothing_is_stored(node_api):
    response = node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat(report("p1", slots_free=1), report("ghost")))

    body = assert_envelope(response, 404, "NOT_FOUND")
    assert body["details"]["unknown_pools"] == ["ghost"]
    assert Pool.objects.get(id="p1").slots_free == 0, "the valid part of a refused heartbeat is not applied"
    assert Node.objects.get(id="gpu-1").status == NodeStatus.REGISTERING


@pytest.mark.parametrize(
    "bad_report",
    [
        report(slots_free=-1),
        report(slots_total=-4),
        report(slots_free=5, slots_total=4),
        report(ready="yes"),
        report(vram_free_bytes=-10),
        {"pool_id": "p1"},
    ],
)
def test_invalid_reports_are_400_and_change_nothing(node_api, bad_report):
    response = node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat(bad_report))

    assert_envelope(response, 400, "INVALID_PARAMS")
    assert Pool.objects.get(id="p1").ready is False


def test_a_node_token_cannot_heartbeat_for_another_node(node_api, alice):
    alice.post("/v2/nodes/register", registration("gpu-2", pools=[pool_spec("p2")]))

    response = node_api.post("/v2/nodes/gpu-2/heartbeat", heartbeat(report("p2")))

    assert_envelope(response, 403, "FORBIDDEN")
    assert Node.objects.get(id="gpu-2").last_heartbeat_at is None


def test_an_unbound_node_token_cannot_heartbeat_for_a_registered_node_it_does_not_own(api, alice):
    alice.post("/v2/nodes/register", registration())
    stranger = issue_token("stranger", Role.NODE, node_id="gpu-9").value

    assert_envelope(api.as_token(stranger).post("/v2/nodes/gpu-1/heartbeat", heartbeat()), 403, "FORBIDDEN")


def test_a_client_token_cannot_heartbeat(bob, alice):
    alice.post("/v2/nodes/register", registration())

    assert_envelope(bob.post("/v2/nodes/gpu-1/heartbeat", heartbeat()), 403, "FORBIDDEN")


def test_an_invalid_node_id_in_the_path_is_404(alice):
    assert_envelope(alice.post("/v2/nodes/a..b%2F/heartbeat", heartbeat()), 404, "NOT_FOUND")


def test_reported_slots_free_never_exceeds_slots_total(node_api):
    node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat(report(slots_free=4, slots_total=None)))

    pool = Pool.objects.get(id="p1")
    assert pool.slots_free <= pool.slots_total


@pytest.fixture
def wakes(monkeypatch):
    from orchestrator.tasks import notify

    calls = []
    monkeypatch.setattr(notify, "wake_dispatchers", lambda: calls.append(1))
    return calls


def test_a_heartbeat_that_adds_slots_wakes_the_dispatchers(node_api, wakes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat(report(slots_free=4)))  # online, ready: wakes
    wakes.clear()

    with django_capture_on_commit_callbacks(execute=True):
        node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat(report(slots_free=4)))
    assert wakes == [], "nothing placement reads has changed"

    with django_capture_on_commit_callbacks(execute=True):
        node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat(report(slots_total=8, slots_free=8)))
    assert wakes == [1], "tasks queued behind a fully leased fleet may fit now"
