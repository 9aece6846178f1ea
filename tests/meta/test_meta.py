import pytest

from nodes.models import Node, NodeStatus
from pools.models import Pool
from tests.conftest import assert_envelope

pytestmark = pytest.mark.django_db


def make_pool(pool_id, node_status=NodeStatus.ONLINE, **fields):
    node, _ = Node.objects.get_or_create(id=f"node-{pool_id}", defaults={"status": node_status})
    defaults = {"engine": "llamacpp", "engine_url": "http://127.0.0.1:1", "slots_total": 4, "ready": True}
    return Pool.objects.create(id=pool_id, node=node, **{**defaults, **fields})


def test_capabilities_are_built_from_online_pools(bob):
    make_pool("p1", engine_version="b4000", ctx_max=8192, slots_total=4, model_refs=["m"])
    make_pool("p2", engine_version="b4100", ctx_max=4096, slots_total=2)
    make_pool("p3", engine="vllm", engine_version="0.6", slots_total=8)
    make_pool("gone", node_status=NodeStatus.OFFLINE, slots_total=100)

    body = bob.get("/v2/meta/capabilities").json()

    assert body["api_version"] == "2.0.0"
    llama = next(e for e in body["engines"] if e["engine"] == "llamacpp")
    assert llama["engine_versions"] == ["b4000", "b4100"]
    assert llama["ctx_max"] == 8192
    assert llama["concurrency"] == 6
    assert llama["pools"] == ["p1", "p2"]
    assert "completion" in llama["supported_workloads"]
    assert [e["engine"] for e in body["engines"]] == ["llamacpp", "vllm"]


def test_capabilities_with_no_pools_lists_no_engines(bob):
    assert bob.get("/v2/meta/capabilities").json() == {"api_version": "2.0.0", "engines": []}


def test_version_names_the_build(bob, settings):
    settings.ORCHD_BUILD_COMMIT = "abc123"

    body = bob.get("/v2/meta/version").json()

    assert body["api_version"] == "2.0.0"
    assert body["build_commit"] == "abc123"
    assert set(body) == {"api_version", "build_commit", "build_time", "version"}


def test_healthz_needs_no_token(api, alice_token):
    response = api.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_readyz_reports_each_component(api):
    response = api.get("/readyz")

    assert response.status_code == 200, response.content
    assert set(response.json()["checks"]) == {"database", "channel_layer", "broker"}


@pytest.mark.django_db(transaction=True)
def test_readyz_names_a_failing_broker(api, monkeypatch):
    from orchestrator.meta import readiness

    def down():
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(readiness, "_broker", down)

    body = assert_envelope(api.get("/readyz"), 503, "NOT_READY")

    assert body["details"]["failing"] == ["broker"]
    assert body["retriable"] is True


def test_schema_and_docs_are_public(api, alice_token):
    schema = api.get("/v2/schema", headers={"Accept": "application/json"})
    docs = api.get("/v2/docs")

    assert schema.status_code == 200
    assert "/v2/meta/capabilities" in schema.json()["paths"]
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
