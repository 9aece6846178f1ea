"""Pool representations and request bodies (SPEC §8, §9)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.validators import URLValidator
from rest_framework import serializers

from orchestrator.api.fields import IdField, ModelIdField, StrictBooleanField, StrictCharField, StrictIntegerField
from pools.models import Engine, Pool
from pools.services import PoolReport, PoolSpec, PurgeRequest

MAX_POOLS_PER_NODE = 64
MAX_MODELS_PER_POOL = 256


def epoch_ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def reload_json(pool: Pool) -> dict[str, Any]:
    return {"state": pool.reload_state, "model_ref": pool.reload_model_ref or None, "error": pool.reload_error or None}


def pool_json(pool: Pool) -> dict[str, Any]:
    return {
        "pool_id": pool.id,
        "node_id": pool.node_id,
        "engine": pool.engine,
        "engine_url": pool.engine_url,
        "engine_version": pool.engine_version,
        "models": list(pool.model_refs),
        "slots_total": pool.slots_total,
        "slots_free": pool.slots_free,
        "active_leases": pool.active_leases,
        "ctx_max": pool.ctx_max,
        "device_mask": pool.device_mask,
        "vram_total_bytes": pool.vram_total_bytes,
        "vram_free_bytes": pool.vram_free_bytes,
        # Ready to take tasks: the engine says so and its node is online.
        "ready": pool.ready and pool.node.status == "online",
        "draining": pool.is_draining,
        "drain": {
            "requested": pool.desired_draining,
            "deadline_ms": epoch_ms(pool.drain_deadline_at),
            "drained_ms": epoch_ms(pool.drained_at),
        },
        "reload": reload_json(pool),
        "purge": pool.purge_request,
        "last_error": pool.last_error or None,
        "last_heartbeat_ms": epoch_ms(pool.last_heartbeat_at),
    }


class ModelListField(serializers.ListField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", ModelIdField())
        kwargs.setdefault("max_length", MAX_MODELS_PER_POOL)
        super().__init__(**kwargs)


class PoolSpecSerializer(serializers.Serializer[PoolSpec]):
    pool_id = IdField()
    engine = serializers.ChoiceField(choices=Engine.choices)
    engine_url = serializers.URLField(max_length=500, validators=[URLValidator(schemes=["http", "https"])])
    engine_version = StrictCharField(max_length=64, required=False, allow_blank=True, default="")
    models = ModelListField(required=False, default=list)
    slots_total = StrictIntegerField(min_value=1, max_value=4096)
    ctx_max = StrictIntegerField(min_value=1, required=False, allow_null=True, default=None)
    device_mask = StrictCharField(max_length=64, required=False, allow_blank=True, default="")
    vram_total_bytes = StrictIntegerField(min_value=0, required=False, allow_null=True, default=None)

    def to_spec(self) -> PoolSpec:
        data = self.validated_data
        return PoolSpec(
            pool_id=data["pool_id"],
            engine=data["engine"],
            engine_url=data["engine_url"],
            engine_version=data["engine_version"],
            models=tuple(data["models"]),
            slots_total=data["slots_total"],
            ctx_max=data["ctx_max"],
            device_mask=data["device_mask"],
            vram_total_bytes=data["vram_total_bytes"],
        )


def spec_from(data: dict[str, Any]) -> PoolSpec:
    serializer = PoolSpecSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.to_spec()


class PoolReportSerializer(serializers.Serializer[PoolReport]):
    pool_id = IdField()
    ready = StrictBooleanField()
    draining = StrictBooleanField(required=False, default=False)
    slots_free = StrictIntegerField(min_value=0, max_value=4096, required=False, allow_null=True, default=None)
    slots_total = StrictIntegerField(min_value=1, max_value=4096, required=False, allow_null=True, default=None)
    vram_free_bytes = StrictIntegerField(min_value=0, required=False, allow_null=True, default=None)
    models = ModelListField(required=False, allow_null=True, default=None)
    engine_version = StrictCharField(max_length=64, required=False, allow_blank=True, allow_null=True, default=None)
    last_error = StrictCharField(max_length=4000, required=False, allow_blank=True, allow_null=True, default="")
    purged = StrictCharField(max_length=64, required=False, allow_null=True, default=None)
    engine_url = serializers.URLField(
        max_length=500,
        required=False,
        allow_null=True,
        default=None,
        validators=[URLValidator(schemes=["http", "https"])],
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        free, total = attrs.get("slots_free"), attrs.get("slots_total")
        if free is not None and total is not None and free > total:
            raise serializers.ValidationError({"slots_free": ["must not exceed slots_total"]})
        return attrs


def report_from(data: dict[str, Any]) -> PoolReport:
    return PoolReport(
        pool_id=data["pool_id"],
        ready=data["ready"],
        draining=data["draining"],
        slots_free=data["slots_free"],
        slots_total=data["slots_total"],
        vram_free_bytes=data["vram_free_bytes"],
        models=tuple(data["models"]) if data["models"] is not None else None,
        engine_version=data["engine_version"],
        last_error=data["last_error"] or "",
        purged=data["purged"],
        engine_url=data["engine_url"],
    )


class DrainSerializer(serializers.Serializer[None]):
    deadline_ms = StrictIntegerField(min_value=0, max_value=7 * 24 * 3600 * 1000, required=False, allow_null=True)


class ReloadSerializer(serializers.Serializer[None]):
    new_model_ref = ModelIdField()


class PurgeSerializer(serializers.Serializer[PurgeRequest]):
    purge_engine = StrictBooleanField(required=False, default=False)
    purge_models = ModelListField(required=False, default=list)
    drain_first = StrictBooleanField(required=False, default=True)
    delete_cache_dirs = StrictBooleanField(required=False, default=False)
    force = StrictBooleanField(required=False, default=False)

    def to_request(self) -> PurgeRequest:
        data = self.validated_data
        return PurgeRequest(
            purge_engine=data["purge_engine"],
            purge_models=tuple(data["purge_models"]),
            drain_first=data["drain_first"],
            delete_cache_dirs=data["delete_cache_dirs"],
            force=data["force"],
        )


class StaticWorkerSerializer(PoolSpecSerializer):
    """POST /v2/workers/register: a standalone engine without an agent."""
