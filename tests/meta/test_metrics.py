import pytest
from prometheus_client.parser import text_string_to_metric_families

from catalog.models import CatalogModel
from nodes.models import Node, NodeStatus
from orchestrator import metrics
from pools.models import Pool
from tests.conftest import assert_envelope

pytestmark = pytest.mark.django_db

SPEC_SERIES = {
    "tasks_enqueued": "counter",
    "tasks_started": "counter",
    "tasks_canceled": "counter",
    "tasks_rejected": "counter",
    "tasks_completed": "counter",
    "tokens_in": "counter",
    "tokens_out": "counter",
    "admission_backpressure_events": "counter",
    "catalog_verifications": "counter",
    "queue_depth": "gauge",
    "active_leases": "gauge",
    "pool_ready": "gauge",
    "model_state": "gauge",
    "latency_first_token_ms": "histogram",
    "latency_decode_ms": "histogram",
    "admission_latency_ms": "histogram",
    "placement_decisions": "counter",
    "drain_events": "counter",
    "orchd_node_registrations": "counter",
    "orchd_node_heartbeats": "counter",
    "orchd_node_deregistrations": "counter",
    "orchd_nodes_online": "gauge",
    "orchd_pools_available": "gauge",
}


def scrape(api):
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def test_every_spec_series_is_exposed_with_its_type(api):
    families = scrape(api)

    for name, kind in SPEC_SERIES.items():
        assert name in families, name
        assert families[name].type == kind, name


def test_histogram_buckets_are_the_specs():
    assert metrics.FIRST_TOKEN_BUCKETS == (50, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000)
    assert metrics.DECODE_BUCKETS == (250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000)


def test_state_gauges_come_from_the_database(api):
    online = Node.objects.create(id="n1", status=NodeStatus.ONLINE)
    Node.objects.create(id="n2", status=NodeStatus.OFFLINE)
    Pool.objects.create(id="p1", node=online, engine="llamacpp", engine_url="http://x", ready=True, active_leases=3)
    Pool.objects.create(
        id="p2", node=online, engine="llamacpp", engine_url="http://x", ready=True, desired_draining=True
    )
    CatalogModel.objects.create(id="llama-3-8b", state="Retired")

    families = scrape(api)

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("active_leases", (("pool_id", "p1"),))] == 3
    assert samples[("pool_ready", (("pool_id", "p1"),))] == 1
    assert samples[("pool_ready", (("pool_id", "p2"),))] == 0
    assert samples[("model_state", (("model_id", "llama-3-8b"), ("state", "Retired")))] == 1
    assert samples[("orchd_nodes_online", ())] == 1
    assert samples[("orchd_pools_available", ())] == 1


def test_scraping_changes_no_value(api):
    metrics.tasks_rejected_total.labels(engine="llamacpp", reason="ADMISSION_REJECT").inc()

    first = api.get("/metrics").content.decode()
    second = api.get("/metrics").content.decode()

    def ours(text):
        return [line for line in text.splitlines() if line.startswith(("tasks_", "queue_depth", "pool_ready"))]

    assert ours(first) == ours(second)


def test_metrics_can_require_a_token(api, settings, alice_token):
    settings.ORCHD_METRICS_TOKEN_REQUIRED = True

    assert_envelope(api.get("/metrics"), 401, "MISSING_TOKEN")
    assert api.as_token(alice_token).get("/metrics").status_code == 200
