"""Database reads behind the state gauges of /metrics (see metrics.StateCollector)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from orchestrator.metrics import STATE_GAUGES


def _family(name: str) -> GaugeMetricFamily:
    for gauge_name, documentation, labels in STATE_GAUGES:
        if gauge_name == name:
            return GaugeMetricFamily(name, documentation, labels=list(labels))
    raise KeyError(name)


def state_gauges() -> Iterator[Metric]:
    from catalog.models import CatalogModel
    from nodes.models import Node
    from pools.models import Pool

    pools = list(Pool.objects.select_related("node").order_by("id"))
    leases, ready = _family("active_leases"), _family("pool_ready")
    placeable = 0
    for pool in pools:
        is_ready = pool.ready and not pool.is_draining and pool.node.status == "online"
        placeable += int(is_ready)
        leases.add_metric([pool.id], pool.active_leases)
        ready.add_metric([pool.id], int(is_ready))
    yield leases
    yield ready

    states = _family("model_state")
    for model_id, state in CatalogModel.objects.order_by("id").values_list("id", "state"):
        states.add_metric([model_id, state], 1)
    yield states

    yield _queue_depth()
    online = _family("orchd_nodes_online")
    online.add_metric([], Node.objects.online().count())
    yield online
    available = _family("orchd_pools_available")
    available.add_metric([], placeable)
    yield available


def _queue_depth() -> GaugeMetricFamily:
    """Queued tasks by engine and priority (not placed yet, so pool_id is `unplaced`)."""
    from django.db.models import Count

    from orchestrator.metrics import UNPLACED
    from orchestrator.tasks.models import Task

    family = _family("queue_depth")
    rows = Task.objects.queued().values("engine", "priority").annotate(depth=Count("id")).order_by("engine", "priority")
    for row in rows:
        family.add_metric([row["engine"], "", UNPLACED, row["priority"]], row["depth"])
    return family
