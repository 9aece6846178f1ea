"""The node registry: registration, heartbeats, deregistration and expiry (SPEC §8)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from nodes.models import Node, NodeStatus
from orchestrator import metrics
from orchestrator.api.errors import ApiError, conflict, not_found
from orchestrator.auth.models import ApiToken, Role
from orchestrator.auth.services import Principal, issue_token
from orchestrator.tasks import notify
from pools.models import Pool
from pools.services import PoolReport, PoolSpec, apply_pool_report, desired_state, pools_lost, upsert_pools

logger = logging.getLogger("orchestrator.nodes")


@dataclass(frozen=True)
class NodeRegistration:
    node_id: str
    machine_id: str = ""
    address: str = ""
    version: str = ""
    capabilities: dict[str, Any] = field(default_factory=dict)
    pools: tuple[PoolSpec, ...] = ()


@dataclass(frozen=True)
class RegistrationResult:
    node: Node
    created: bool
    node_token: str | None = None


@dataclass(frozen=True)
class HeartbeatAnswer:
    next_heartbeat_ms: int
    pools: list[dict[str, Any]]


def authorize_node(principal: Principal, node_id: str, *, registering: bool = False) -> None:
    """A node token acts only for the node it is bound to (operators for any).

    A token not yet bound may register — that binds it — but nothing else.
    """
    if principal.role != Role.NODE or principal.node_id == node_id:
        return
    if principal.node_id is None and registering:
        return
    bound = f"bound to node '{principal.node_id}'" if principal.node_id else "not bound to a node yet (register first)"
    raise ApiError(403, "FORBIDDEN", f"This node token is {bound}; it cannot act for '{node_id}'.")


def register_node(registration: NodeRegistration, principal: Principal, now: datetime) -> RegistrationResult:
    """Create or update a node and its pools; idempotent for the same body."""
    authorize_node(principal, registration.node_id, registering=True)
    with transaction.atomic():
        _refuse_foreign_pools(registration)
        stale_at, offline_at = Node(id=registration.node_id).deadlines_from(now)
        # An agent restarting (or retrying) re-registers a node that is serving:
        # keep it online, or its running tasks would be taken for lost.
        current = Node.objects.filter(id=registration.node_id).values_list("status", flat=True).first()
        status = current if current in (NodeStatus.ONLINE, NodeStatus.STALE) else NodeStatus.REGISTERING
        node, created = Node.objects.update_or_create(
            id=registration.node_id,
            defaults={
                "machine_id": registration.machine_id,
                "address": registration.address,
                "version": registration.version,
                "capabilities": registration.capabilities,
                "status": status,
                "stale_at": stale_at,
                "offline_at": offline_at,
            },
        )
        removed = upsert_pools(node, registration.pools)
        token_value = _bind_node_credential(principal, node.id)
    if removed:
        pools_lost(removed, reason="deregistered")
    metrics.orchd_node_registrations_total.labels(outcome="created" if created else "updated").inc()
    logger.info(
        "node.registered", extra={"node_id": node.id, "first_registration": created, "pools": len(registration.pools)}
    )
    return RegistrationResult(node=node, created=created, node_token=token_value)


def _refuse_foreign_pools(registration: NodeRegistration) -> None:
    pool_ids = [spec.pool_id for spec in registration.pools]
    if len(set(pool_ids)) != len(pool_ids):
        raise ApiError(400, "INVALID_PARAMS", "Each pool_id may appear once.", details={"pools": ["duplicate pool_id"]})
    foreign = list(
        Pool.objects.filter(id__in=pool_ids).exclude(node_id=registration.node_id).values_list("id", "node_id")
    )
    if foreign:
        claimed = ", ".join(f"{pool_id} (node {node_id})" for pool_id, node_id in foreign)
        metrics.orchd_node_registrations_total.labels(outcome="conflict").inc()
        raise conflict(f"Pool ids already belong to another node: {claimed}.")


def _bind_node_credential(principal: Principal, node_id: str) -> str | None:
    """Bind a node token on first use; issue one when an operator registers a new node."""
    if principal.role == Role.NODE and principal.token_id is not None and principal.node_id is None:
        ApiToken.objects.filter(pk=principal.token_id, node_id="").update(node_id=node_id)
        return None
    if principal.role != Role.OPERATOR:
        return None
    has_token = ApiToken.objects.usable_now().filter(role=Role.NODE, node_id=node_id).exists()
    if has_token:
        return None
    return issue_token(f"node:{node_id}", Role.NODE, node_id=node_id, created_by=principal.label).value


def record_heartbeat(node_id: str, reports: list[PoolReport], principal: Principal, now: datetime) -> HeartbeatAnswer:
    """Store what the node says is, and answer with what should be."""
    authorize_node(principal, node_id)
    with transaction.atomic():
        node = Node.objects.select_for_update().filter(id=node_id).first()
        if node is None:
            metrics.orchd_node_heartbeats_total.labels(outcome="unknown_node").inc()
            raise not_found(f"Node '{node_id}'")
        pools = {pool.id: pool for pool in Pool.objects.select_for_update().filter(node=node)}
        _refuse_unknown_pools(node_id, reports, pools)
        was_status = node.status
        was_serving = {pool_id: _serving(pool) for pool_id, pool in pools.items()}
        node.stale_at, node.offline_at = node.deadlines_from(now)
        node.last_heartbeat_at, node.status = now, NodeStatus.ONLINE
        node.save(update_fields=["stale_at", "offline_at", "last_heartbeat_at", "status"])
        for report in reports:
            apply_pool_report(pools[report.pool_id], report, now)
        if was_status != NodeStatus.ONLINE or any(_serving(pools[p]) != was for p, was in was_serving.items()):
            # Queued tasks may fit now (admission wakes no dispatcher behind a fully leased fleet).
            notify.wake_dispatchers_on_commit()
        answer = HeartbeatAnswer(
            next_heartbeat_ms=settings.ORCHD_HEARTBEAT_INTERVAL_MS,
            pools=[desired_state(pool) for pool in sorted(pools.values(), key=lambda p: p.id)],
        )
    if was_status != NodeStatus.ONLINE:
        logger.info("node.online", extra={"node_id": node_id, "was": was_status})
    metrics.orchd_node_heartbeats_total.labels(outcome="ok").inc()
    return answer


def _serving(pool: Pool) -> tuple[object, ...]:
    """What of a pool's reported state placement and claims read."""
    return (pool.ready, pool.draining, pool.slots_total, tuple(pool.model_refs or ()))


def _refuse_unknown_pools(node_id: str, reports: list[PoolReport], pools: dict[str, Pool]) -> None:
    unknown = sorted({report.pool_id for report in reports} - set(pools))
    if unknown:
        metrics.orchd_node_heartbeats_total.labels(outcome="unknown_pool").inc()
        # 404 makes the agent register again, which brings both sides back in line.
        raise ApiError(
            404,
            "NOT_FOUND",
            f"Pools not registered for node '{node_id}': {', '.join(unknown)}. Register the node again.",
            details={"unknown_pools": unknown},
        )


def deregister_node(node_id: str, principal: Principal) -> None:
    """Remove a node; its pools leave placement at once."""
    authorize_node(principal, node_id)
    with transaction.atomic():
        node = Node.objects.filter(id=node_id).first()
        if node is None:
            metrics.orchd_node_deregistrations_total.labels(outcome="unknown_node").inc()
            raise not_found(f"Node '{node_id}'")
        pool_ids = list(node.pools.values_list("id", flat=True))
        node.delete()
    pools_lost(pool_ids, reason="deregistered")
    metrics.orchd_node_deregistrations_total.labels(outcome="ok").inc()
    logger.info("node.deregistered", extra={"node_id": node_id, "pools": pool_ids})


def expire_stale_nodes(now: datetime) -> dict[str, list[str]]:
    """Move nodes online → stale → offline by their stored deadlines.

    Each transition is a compare-and-swap on (status, deadline): a heartbeat
    that lands in between moves the deadline, so the update matches nothing
    and the node stays online. Safe to run concurrently or twice.
    """
    went_stale = [
        node_id
        for node_id in Node.objects.filter(status=NodeStatus.ONLINE, stale_at__lte=now).values_list("id", flat=True)
        if Node.objects.filter(id=node_id, status=NodeStatus.ONLINE, stale_at__lte=now).update(status=NodeStatus.STALE)
    ]
    alive = Q(status__in=[NodeStatus.ONLINE, NodeStatus.STALE, NodeStatus.REGISTERING])
    went_offline = []
    for node_id in Node.objects.filter(alive, offline_at__lte=now).values_list("id", flat=True):
        if Node.objects.filter(alive, id=node_id, offline_at__lte=now).update(status=NodeStatus.OFFLINE):
            went_offline.append(node_id)
            pools_lost(list(Pool.objects.filter(node_id=node_id).values_list("id", flat=True)), reason="node_offline")
    for node_id in went_stale:
        logger.warning("node.stale", extra={"node_id": node_id})
    for node_id in went_offline:
        logger.warning("node.offline", extra={"node_id": node_id})
    return {"stale": went_stale, "offline": went_offline}
