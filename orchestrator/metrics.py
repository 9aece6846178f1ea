"""Every Prometheus series of SPEC §10, defined once with its fixed labels.

Counters and histograms are incremented where the events happen; with
ORCHD_METRICS_DIR set they are shared by all processes on the machine
(prometheus_client multiprocess mode). Gauges that describe *state* — queue
depth, leases, pool readiness, model states, nodes online — are read from the
database at scrape time by `StateCollector`, so every process reports the same
numbers and scraping never changes a value.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

UNPLACED = "unplaced"

FIRST_TOKEN_BUCKETS = (50, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000)
DECODE_BUCKETS = (250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 12000)
ADMISSION_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 250, 500, 1000)

_POOL_LABELS = ("engine", "engine_version", "pool_id", "replica_id")

tasks_enqueued_total = Counter("tasks_enqueued", "Tasks admitted into the queue.", (*_POOL_LABELS, "priority"))
tasks_started_total = Counter("tasks_started", "Tasks that began streaming.", (*_POOL_LABELS, "priority"))
tasks_canceled_total = Counter("tasks_canceled", "Tasks canceled, by reason.", (*_POOL_LABELS, "reason"))
tasks_rejected_total = Counter("tasks_rejected", "Admissions refused, by error code.", ("engine", "reason"))
tasks_completed_total = Counter(
    "tasks_completed", "Tasks that reached a terminal state.", ("engine", "pool_id", "outcome")
)
tokens_in_total = Counter("tokens_in", "Prompt tokens processed.", _POOL_LABELS)
tokens_out_total = Counter("tokens_out", "Tokens generated and relayed.", _POOL_LABELS)
admission_backpressure_events_total = Counter(
    "admission_backpressure_events", "Admissions that met a full queue.", ("engine", "policy")
)
catalog_verifications_total = Counter(
    "catalog_verifications", "Model verification outcomes.", ("result", "reason", "engine")
)
placement_decisions_total = Counter("placement_decisions", "Placement decisions.", ("outcome", "pinned", "fallback"))
drain_events_total = Counter("drain_events", "Pool drains that finished.", ("pool_id", "reason"))
orchd_node_registrations_total = Counter("orchd_node_registrations", "Node registrations.", ("outcome",))
orchd_node_heartbeats_total = Counter("orchd_node_heartbeats", "Node heartbeats.", ("outcome",))
orchd_node_deregistrations_total = Counter("orchd_node_deregistrations", "Node deregistrations.", ("outcome",))

latency_first_token_ms = Histogram(
    "latency_first_token_ms",
    "Time from admission to the first token, in ms.",
    ("engine", "engine_version", "pool_id", "priority"),
    buckets=FIRST_TOKEN_BUCKETS,
)
latency_decode_ms = Histogram(
    "latency_decode_ms",
    "Time from first token to the end of the stream, in ms.",
    ("engine", "engine_version", "pool_id", "priority"),
    buckets=DECODE_BUCKETS,
)
admission_latency_ms = Histogram(
    "admission_latency_ms", "Time to answer POST /v2/tasks, in ms.", ("priority",), buckets=ADMISSION_BUCKETS
)
# Beyond the SPEC's series: on SQLite, how many admissions each trip to the database thread
# carried (orchestrator/asgi.py). Trips of ADMISSIONS_PER_TRIP (8) mean admissions are queueing for it.
orchd_admission_trip_size = Histogram(
    "orchd_admission_trip_size",
    "Admissions answered together in one trip to the database thread (SQLite).",
    buckets=(1, 2, 3, 4, 6, 8),
)
# Beyond the SPEC's series: the garbage collector's pauses (generations 1 and 2), which hold the
# GIL and so every request of the process (orchestrator/heap.py).
orchd_gc_pause_seconds = Histogram(
    "orchd_gc_pause_seconds",
    "Time the garbage collector held the process, per pass of generation 1 or 2.",
    ("generation",),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)


class StateCollector(Collector):
    """State gauges computed from the database when /metrics is scraped."""

    def collect(self) -> Iterator[Metric]:
        from orchestrator.metrics_state import state_gauges

        yield from state_gauges()

    def describe(self) -> Iterator[Metric]:
        # Described without a query, so registering this collector never hits the DB.
        for name, documentation, labels in STATE_GAUGES:
            yield GaugeMetricFamily(name, documentation, labels=list(labels))


STATE_GAUGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("queue_depth", "Queued tasks.", ("engine", "engine_version", "pool_id", "priority")),
    ("active_leases", "Slots held by running tasks.", ("pool_id",)),
    ("pool_ready", "1 when the pool takes new tasks.", ("pool_id",)),
    ("model_state", "1 for the catalog state a model is in.", ("model_id", "state")),
    ("orchd_nodes_online", "Nodes online.", ()),
    ("orchd_pools_available", "Pools that can take new tasks.", ()),
)
