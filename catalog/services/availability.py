"""Which models can be served right now, and where (`GET /v2/catalog/availability`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from catalog.models import CatalogModel
from catalog.types import Availability, ModelAvailability
from pools.models import Pool

# A model is "replicated" when losing any one node still leaves it served.
REPLICATED_MIN_NODES = 2


@dataclass
class _Tally:
    nodes: set[str] = field(default_factory=set)
    pools: list[str] = field(default_factory=list)
    ready_pools: int = 0
    total_slots: int = 0
    free_slots: int = 0

    def add(self, pool: Pool) -> None:
        usable = pool.ready and not pool.is_draining
        self.nodes.add(pool.node_id)
        self.pools.append(pool.id)
        self.total_slots += pool.slots_total
        # Free slots of an unready or draining pool can't take a task, so they don't count.
        if usable:
            self.ready_pools += 1
            self.free_slots += pool.slots_free


def availability() -> Availability:
    """Serving capacity per model over pools on online nodes only.

    Lists every model some online pool serves (catalogued or not) plus every
    Active catalog entry, so an operator sees entries nobody serves as zeros.
    """
    catalogued = CatalogModel.objects.active().values_list("id", flat=True)
    tallies: dict[str, _Tally] = {model_id: _Tally() for model_id in catalogued}
    for pool in Pool.objects.on_online_nodes().order_by("id"):
        for model_id in dict.fromkeys(pool.model_refs or []):
            tallies.setdefault(str(model_id), _Tally()).add(pool)
    models = [_row(model_id, tallies[model_id]) for model_id in sorted(tallies)]
    return {
        "models": models,
        "total_models": len(models),
        "replicated_models": [row["model_id"] for row in models if len(row["nodes"]) >= REPLICATED_MIN_NODES],
        "single_node_models": [row["model_id"] for row in models if len(row["nodes"]) == 1],
    }


def _row(model_id: str, tally: _Tally) -> ModelAvailability:
    return {
        "model_id": model_id,
        "nodes": sorted(tally.nodes),
        "pools": tally.pools,
        "ready_pools": tally.ready_pools,
        "total_slots": tally.total_slots,
        "free_slots": tally.free_slots,
    }
