from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import CatalogModel
from pools.models import Pool, ReloadState
from tests.conftest import assert_envelope
from tests.nodes.bodies import heartbeat, registration, report

pytestmark = pytest.mark.django_db


@pytest.fixture
def node_api(api, alice):
    token = alice.post("/v2/nodes/register", registration()).json()["node_token"]
    node = api.as_token(token)
    node.post("/v2/nodes/gpu-1/heartbeat", heartbeat())
    return node


def test_pools_are_listed(alice, node_api):
    body = alice.get("/v2/pools").json()

    assert body["count"] == 1
    assert body["pools"][0]["pool_id"] == "p1"
    assert body["pools"][0]["models"] == ["llama-3-8b"]


def test_pool_health_has_every_spec_field(alice, node_api):
    body = alice.get("/v2/pools/p1/health").json()

    assert {
        "live",
        "ready",
        "draining",
        "node_id",
        "engine",
        "engine_version",
        "models",
        "slots_total",
        "slots_free",
        "active_leases",
        "vram_free_bytes",
        "last_heartbeat_ms",
        "last_error",
        "reload",
        "metrics",
    } <= set(body)
    assert (body["live"], body["ready"], body["draining"]) == (True, True, False)
    assert body["reload"] == {"state": "idle", "model_ref": None, "error": None}
    assert set(body["metrics"]) == {"queue_depth", "tokens_per_s", "tasks_running"}


def test_unknown_pool_is_404(alice):
    assert_envelope(alice.get("/v2/pools/nope/health"), 404, "NOT_FOUND")
    assert_envelope(alice.post("/v2/pools/nope/drain", {}), 404, "NOT_FOUND")


def test_drain_stops_placement_at_once_and_the_agent_is_told(alice, node_api):
    response = alice.post("/v2/pools/p1/drain", {"deadline_ms": 60_000})

    assert response.status_code == 202
    assert response.json()["draining"] is True
    assert not Pool.objects.placeable().filter(id="p1").exists()
    desired = node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat()).json()["pools"][0]["desired"]
    assert desired["draining"] is True
    assert alice.get("/v2/pools/p1/health").json()["ready"] is False


def test_undrain_reverses_a_drain(alice, node_api):
    alice.post("/v2/pools/p1/drain", {})

    assert alice.post("/v2/pools/p1/undrain").status_code == 202
    assert Pool.objects.placeable().filter(id="p1").exists()


@pytest.mark.parametrize("body", [{"deadline_ms": -1}, {"deadline_ms": "soon"}, {"deadline_ms": 1.5}])
def test_a_bad_drain_deadline_is_400(alice, node_api, body):
    assert_envelope(alice.post("/v2/pools/p1/drain", body), 400, "INVALID_PARAMS")


def test_reload_goes_pending_then_succeeds_when_the_agent_reports_the_model(alice, node_api):
    CatalogModel.objects.create(id="llama-3-70b")

    response = alice.post("/v2/pools/p1/reload", {"new_model_ref": "llama-3-70b"})

    assert response.status_code == 202
    assert response.json()["reload"]["state"] == "pending"
    desired = node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat()).json()["pools"][0]["desired"]
    assert desired["model_ref"] == "llama-3-70b"
    assert alice.get("/v2/pools/p1/health").json()["reload"]["state"] == "pending"
    node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat(report(models=["llama-3-70b"])))
    health = alice.get("/v2/pools/p1/health").json()
    assert health["reload"] == {"state": "succeeded", "model_ref": "llama-3-70b", "error": None}
    assert health["models"] == ["llama-3-70b"]


def test_a_failed_reload_rolls_back_and_keeps_the_old_model(alice, node_api):
    CatalogModel.objects.create(id="llama-3-70b")
    alice.post("/v2/pools/p1/reload", {"new_model_ref": "llama-3-70b"})

    node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat(report(last_error="reload to llama-3-70b failed: no file")))

    health = alice.get("/v2/pools/p1/health").json()
    assert health["reload"]["state"] == "failed"
    assert "no file" in health["reload"]["error"]
    assert health["models"] == ["llama-3-8b"]
    assert health["ready"] is True
    desired = node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat()).json()["pools"][0]["desired"]
    assert desired["model_ref"] is None, "the agent is no longer asked to load the failed model"


def test_a_second_reload_while_one_is_pending_is_409(alice, node_api):
    CatalogModel.objects.create(id="a")
    CatalogModel.objects.create(id="b")
    alice.post("/v2/pools/p1/reload", {"new_model_ref": "a"})

    assert_envelope(alice.post("/v2/pools/p1/reload", {"new_model_ref": "b"}), 409, "CONFLICT")
    assert Pool.objects.get(id="p1").reload_model_ref == "a"


def test_reload_to_an_unknown_or_retired_model_is_400(alice, node_api):
    CatalogModel.objects.create(id="old", state="Retired")

    assert_envelope(alice.post("/v2/pools/p1/reload", {"new_model_ref": "nope"}), 400, "INVALID_PARAMS")
    assert_envelope(alice.post("/v2/pools/p1/reload", {"new_model_ref": "old"}), 400, "INVALID_PARAMS")
    assert Pool.objects.get(id="p1").reload_state == ReloadState.IDLE


def test_purge_is_handed_to_the_agent_and_cleared_when_done(alice, node_api):
    response = alice.post("/v2/pools/p1/purge", {"purge_models": ["llama-3-8b"], "delete_cache_dirs": True})

    assert response.status_code == 202
    purge = response.json()["purge"]
    assert purge["purge_models"] == ["llama-3-8b"]
    assert purge["drain_first"] is True
    assert Pool.objects.get(id="p1").desired_draining is True
    desired = node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat()).json()["pools"][0]["desired"]
    assert desired["purge"]["id"] == purge["id"]
    node_api.post("/v2/nodes/gpu-1/heartbeat", heartbeat(report(purged=purge["id"])))
    assert Pool.objects.get(id="p1").purge_request is None


def test_pool_writes_need_an_operator(bob, node_api):
    assert_envelope(bob.post("/v2/pools/p1/drain", {}), 403, "FORBIDDEN")
    assert_envelope(bob.get("/v2/pools"), 403, "FORBIDDEN")


def test_drain_deadlines_are_enforced_by_the_job(alice, node_api):
    from pools.services import enforce_drains

    alice.post("/v2/pools/p1/drain", {"deadline_ms": 1000})
    Pool.objects.filter(id="p1").update(active_leases=1)

    overdue = enforce_drains(timezone.now() + timedelta(seconds=2))
    assert overdue == {"overdue": ["p1"], "drained": []}

    Pool.objects.filter(id="p1").update(active_leases=0)
    assert enforce_drains(timezone.now() + timedelta(seconds=3))["drained"] == ["p1"]
    assert enforce_drains(timezone.now() + timedelta(seconds=4))["drained"] == [], "a drain finishes once"
