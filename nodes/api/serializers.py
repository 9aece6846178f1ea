"""Node request bodies and representations (SPEC §8)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from nodes.models import Node
from nodes.services import NodeRegistration
from orchestrator.api.fields import IdField, StrictCharField, StrictIntegerField
from pools.api.serializers import MAX_POOLS_PER_NODE, PoolReportSerializer, PoolSpecSerializer, epoch_ms, pool_json

MAX_GPUS = 64


class GpuSerializer(serializers.Serializer[dict[str, Any]]):
    device_id = serializers.JSONField()
    name = StrictCharField(max_length=200, required=False, allow_blank=True)
    vram_total_bytes = StrictIntegerField(min_value=0, required=False, allow_null=True)
    compute_capability = StrictCharField(max_length=32, required=False, allow_blank=True, allow_null=True)


class CapabilitiesSerializer(serializers.Serializer[dict[str, Any]]):
    gpus = serializers.ListField(child=GpuSerializer(), max_length=MAX_GPUS, required=False, default=list)
    cpu_cores = StrictIntegerField(min_value=0, required=False, allow_null=True)
    ram_total_bytes = StrictIntegerField(min_value=0, required=False, allow_null=True)


class RegisterSerializer(serializers.Serializer[NodeRegistration]):
    node_id = IdField()
    machine_id = StrictCharField(max_length=128, required=False, allow_blank=True, default="")
    address = StrictCharField(max_length=255, required=False, allow_blank=True, default="")
    version = StrictCharField(max_length=64, required=False, allow_blank=True, default="")
    capabilities = CapabilitiesSerializer(required=False, default=dict)
    pools = serializers.ListField(child=PoolSpecSerializer(), max_length=MAX_POOLS_PER_NODE, default=list)

    def to_registration(self) -> NodeRegistration:
        data = self.validated_data
        specs = []
        for item in data["pools"]:
            spec = PoolSpecSerializer(data=item)
            spec.is_valid(raise_exception=True)
            specs.append(spec.to_spec())
        return NodeRegistration(
            node_id=data["node_id"],
            machine_id=data["machine_id"],
            address=data["address"],
            version=data["version"],
            capabilities=dict(data["capabilities"]),
            pools=tuple(specs),
        )


class HeartbeatSerializer(serializers.Serializer[None]):
    timestamp = serializers.JSONField(required=False)
    pools = serializers.ListField(child=PoolReportSerializer(), max_length=MAX_POOLS_PER_NODE, default=list)


def node_json(node: Node, *, with_pools: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "node_id": node.id,
        "machine_id": node.machine_id,
        "address": node.address,
        "version": node.version,
        "status": node.status,
        "last_heartbeat_ms": node.last_heartbeat_ms,
        "registered_ms": epoch_ms(node.registered_at),
        "capabilities": node.capabilities,
    }
    if with_pools:
        body["pools"] = [pool_json(pool) for pool in node.pools.all()]
    return body
