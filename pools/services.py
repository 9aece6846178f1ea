"""Pools: upserts from nodes, desired state (drain, reload, purge), static pools.

Operators change only *desired* fields here; the node agent reads them from
each heartbeat answer, acts, and reports back, and `apply_pool_report` turns
those reports into outcomes (reload succeeded or failed, purge done).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from nodes.models import Node, NodeStatus
from orchestrator import metrics
from orchestrator.api.errors import conflict, invalid_params
from pools.models import Pool, ReloadState

logger = logging.getLogger("orchestrator.pools")


@dataclass(frozen=True)
class PoolSpec:
    """A pool as a node declares it at registration."""

    pool_id: str
    engine: str
    engine_url: str
    engine_version: str = ""
    models: tuple[str, ...] = ()
    slots_total: int = 1
    ctx_max: int | None = None
    device_mask: str = ""
    vram_total_bytes: int | None = None


@dataclass(frozen=True)
class PoolReport:
    """A pool's live state as a heartbeat reports it."""

    pool_id: str
    ready: bool
    draining: bool = False
    slots_free: int | None = None
    slots_total: int | None = None
    vram_free_bytes: int | None = None
    models: tuple[str, ...] | None = None
    engine_version: str | None = None
    last_error: str = ""
    purged: str | None = None
    # Set by an agent that switched engines (a reload starts the new one on a new port).
    engine_url: str | None = None


@dataclass(frozen=True)
class PurgeRequest:
    purge_engine: bool = False
    purge_models: tuple[str, ...] = ()
    drain_first: bool = True
    delete_cache_dirs: bool = False
    force: bool = False


def upsert_pools(node: Node, specs: tuple[PoolSpec, ...]) -> list[str]:
    """Make the node's pools match `specs`; returns the ids of pools removed."""
    for spec in specs:
        fields = {
            "node": node,
            "engine": spec.engine,
            "engine_url": spec.engine_url,
            "engine_version": spec.engine_version,
            "model_refs": list(spec.models),
            "slots_total": spec.slots_total,
            "ctx_max": spec.ctx_max,
            "device_mask": spec.device_mask,
            "vram_total_bytes": spec.vram_total_bytes,
        }
        # Readiness comes from heartbeats (or probes): a new pool starts unready, and
        # re-registering keeps a pool's last reported state until the next heartbeat.
        Pool.objects.update_or_create(id=spec.pool_id, defaults=fields, create_defaults={**fields, "ready": False})
    gone = Pool.objects.filter(node=node).exclude(id__in=[spec.pool_id for spec in specs])
    removed = list(gone.values_list("id", flat=True))
    gone.delete()
    return removed


def apply_pool_report(pool: Pool, report: PoolReport, now: datetime) -> None:
    """Store a heartbeat's report and settle pending reloads and purges."""
    pool.ready = report.ready
    pool.draining = report.draining
    if report.slots_total is not None:
        pool.slots_total = report.slots_total
    if report.slots_free is not None:
        pool.slots_free = min(report.slots_free, pool.slots_total)
    if report.vram_free_bytes is not None:
        pool.vram_free_bytes = report.vram_free_bytes
    if report.engine_version is not None:
        pool.engine_version = report.engine_version
    if report.models is not None:
        pool.model_refs = list(report.models)
    if report.engine_url:
        pool.engine_url = report.engine_url
    pool.last_error = report.last_error
    pool.last_heartbeat_at = now
    _settle_reload(pool, report)
    if pool.purge_request and report.purged == pool.purge_request.get("id"):
        logger.info("pool.purged", extra={"pool_id": pool.id, "purge_id": report.purged})
        pool.purge_request = None
    pool.save()


def _settle_reload(pool: Pool, report: PoolReport) -> None:
    if pool.reload_state != ReloadState.PENDING:
        return
    target = pool.reload_model_ref
    if report.ready and report.models is not None and target in report.models:
        pool.reload_state, pool.reload_error = ReloadState.SUCCEEDED, ""
        logger.info("pool.reload_succeeded", extra={"pool_id": pool.id, "model_ref": target})
    elif report.last_error:
        # Rollback: the agent kept the old engine serving; stop asking for the new model.
        pool.reload_state, pool.reload_error = ReloadState.FAILED, report.last_error
        pool.desired_model_ref = ""
        logger.warning(
            "pool.reload_failed", extra={"pool_id": pool.id, "model_ref": target, "error": report.last_error}
        )


def desired_state(pool: Pool) -> dict[str, Any]:
    """What the control plane wants of this pool, as the heartbeat answer says it."""
    return {
        "pool_id": pool.id,
        "desired": {
            "draining": pool.desired_draining,
            "model_ref": pool.desired_model_ref or None,
            "purge": pool.purge_request,
        },
    }


def pools_lost(pool_ids: list[str], reason: str) -> None:
    """Pools left placement (node offline, deregistered, pool removed, drain deadline).

    Dispatchers running tasks there end them with WORKER_RESET (re-queueing
    those that had not streamed a token). They find out on their next
    one-second sweep; this broadcast makes them look at once.
    """
    if not pool_ids:
        return
    logger.warning("pools.lost", extra={"pools": pool_ids, "reason": reason})
    from orchestrator.tasks import notify

    notify.broadcast({"kind": "pools_lost", "pools": pool_ids, "reason": reason})


def drain_pool(pool: Pool, deadline_ms: int | None, now: datetime) -> Pool:
    """Stop new placements at once; running tasks may finish until the deadline."""
    deadline = now + timedelta(milliseconds=deadline_ms) if deadline_ms is not None else None
    Pool.objects.filter(pk=pool.pk).update(
        desired_draining=True, drain_started_at=now, drain_deadline_at=deadline, drained_at=None
    )
    logger.info("pool.drain_requested", extra={"pool_id": pool.id, "deadline_ms": deadline_ms})
    pool.refresh_from_db()
    return pool


def undrain_pool(pool: Pool) -> Pool:
    Pool.objects.filter(pk=pool.pk).update(
        desired_draining=False, drain_started_at=None, drain_deadline_at=None, drained_at=None
    )
    logger.info("pool.undrained", extra={"pool_id": pool.id})
    pool.refresh_from_db()
    return pool


def request_reload(pool: Pool, model_ref: str, now: datetime) -> Pool:
    """Ask the agent to switch the pool to `model_ref` (atomic on the agent's side)."""
    from catalog.models import CatalogModel

    if pool.node_id == Node.STATIC_NODE_ID:
        raise conflict("Static pools have no node agent to reload them.")
    model = CatalogModel.objects.filter(id=model_ref).first()
    if model is None:
        raise invalid_params(f"Model '{model_ref}' is not in the catalog.", {"new_model_ref": ["not in the catalog"]})
    if model.state == "Retired":
        raise invalid_params(f"Model '{model_ref}' is Retired.", {"new_model_ref": ["retired"]})
    changed = (
        Pool.objects.filter(pk=pool.pk)
        .exclude(reload_state=ReloadState.PENDING)
        .update(
            desired_model_ref=model_ref,
            reload_state=ReloadState.PENDING,
            reload_model_ref=model_ref,
            reload_error="",
            reload_requested_at=now,
        )
    )
    if not changed:
        raise conflict(f"A reload of pool '{pool.id}' is already pending.")
    logger.info("pool.reload_requested", extra={"pool_id": pool.id, "model_ref": model_ref})
    pool.refresh_from_db()
    return pool


def request_purge(pool: Pool, purge: PurgeRequest, now: datetime) -> Pool:
    if pool.node_id == Node.STATIC_NODE_ID:
        raise conflict("Static pools have no node agent to purge them.")
    request = {
        "id": uuid.uuid4().hex,
        "purge_engine": purge.purge_engine,
        "purge_models": list(purge.purge_models),
        "drain_first": purge.drain_first,
        "delete_cache_dirs": purge.delete_cache_dirs,
        "force": purge.force,
        "requested_ms": int(now.timestamp() * 1000),
    }
    fields: dict[str, Any] = {"purge_request": request}
    if purge.drain_first:
        fields.update(desired_draining=True, drain_started_at=now, drained_at=None)
    Pool.objects.filter(pk=pool.pk).update(**fields)
    logger.info("pool.purge_requested", extra={"pool_id": pool.id, "purge_id": request["id"]})
    pool.refresh_from_db()
    return pool


def enforce_drains(now: datetime) -> dict[str, list[str]]:
    """End drains: past the deadline, running tasks are reset; with no lease left, the drain is done."""
    draining = Pool.objects.filter(desired_draining=True, drained_at__isnull=True)
    overdue = list(draining.filter(drain_deadline_at__lte=now).values_list("id", flat=True))
    if overdue:
        pools_lost(overdue, reason="drain")
    finished = []
    for pool_id, deadline in draining.filter(active_leases=0).values_list("id", "drain_deadline_at"):
        if Pool.objects.filter(id=pool_id, desired_draining=True, drained_at__isnull=True, active_leases=0).update(
            drained_at=now
        ):
            reason = "deadline" if deadline is not None and deadline <= now else "completed"
            metrics.drain_events_total.labels(pool_id=pool_id, reason=reason).inc()
            finished.append(pool_id)
            logger.info("pool.drained", extra={"pool_id": pool_id, "reason": reason})
    return {"overdue": overdue, "drained": finished}


def register_static_pool(spec: PoolSpec) -> Pool:
    """A standalone engine as a pool of the node `static`, watched by probes."""
    node, _ = Node.objects.get_or_create(id=Node.STATIC_NODE_ID, defaults={"status": NodeStatus.ONLINE})
    owner = Pool.objects.filter(id=spec.pool_id).exclude(node=node).values_list("node_id", flat=True).first()
    if owner:
        raise conflict(f"Pool '{spec.pool_id}' already belongs to node '{owner}'.")
    with transaction.atomic():
        Node.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE, last_heartbeat_at=timezone.now())
        pool, _ = Pool.objects.update_or_create(
            id=spec.pool_id,
            defaults={
                "node": node,
                "engine": spec.engine,
                "engine_url": spec.engine_url,
                "model_refs": list(spec.models),
                "slots_total": spec.slots_total,
                "ctx_max": spec.ctx_max,
                "ready": False,
            },
        )
    logger.info("pool.static_registered", extra={"pool_id": pool.id, "engine": pool.engine})
    return pool


def probe_static_pools() -> dict[str, bool]:
    """Health-probe every static pool and store the outcome (network I/O outside transactions)."""
    from pools.probes import probe_engine

    outcomes = {}
    for pool in Pool.objects.filter(node_id=Node.STATIC_NODE_ID):
        probe = probe_engine(pool.engine, pool.engine_url)
        fields: dict[str, Any] = {"ready": probe.ready, "last_error": probe.error, "last_heartbeat_at": timezone.now()}
        if probe.engine_version:
            fields["engine_version"] = probe.engine_version
        if probe.slots_free is not None:
            fields["slots_free"] = probe.slots_free
        Pool.objects.filter(pk=pool.pk).update(**fields)
        outcomes[pool.id] = probe.ready
    return outcomes
