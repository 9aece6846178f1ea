"""Pool endpoints (SPEC §9) and static worker registration (SPEC §8.1)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.api.errors import not_found
from orchestrator.audit.services import Source, api_actor, audited
from orchestrator.auth.permissions import IsOperator
from orchestrator.ids import is_valid_id
from pools import services
from pools.api.serializers import (
    DrainSerializer,
    PurgeSerializer,
    ReloadSerializer,
    StaticWorkerSerializer,
    epoch_ms,
    pool_json,
    reload_json,
)
from pools.models import Pool


def get_pool(pool_id: str) -> Pool:
    pool = Pool.objects.select_related("node").filter(id=pool_id).first() if is_valid_id(pool_id) else None
    if pool is None:
        raise not_found(f"Pool '{pool_id}'")
    return pool


def runtime_metrics(pool: Pool) -> dict[str, Any]:
    """Live load: queued tasks this pool could take, observed decode speed, running tasks."""
    from orchestrator.tasks.models import ServiceTime, Task

    queued = Task.objects.queued().filter(engine=pool.engine, model_ref__in=pool.model_refs or []).count()
    per_token = [
        row for row in ServiceTime.objects.filter(pool_id=pool.id).values_list("decode_ms_per_token", flat=True) if row
    ]
    tokens_per_s = round(1000 / (sum(per_token) / len(per_token)), 1) if per_token else 0.0
    return {"queue_depth": queued, "tokens_per_s": tokens_per_s, "tasks_running": pool.active_leases}


class OperatorView(APIView):
    permission_classes = [IsOperator]


class PoolListView(OperatorView):
    @extend_schema(summary="List pools")
    def get(self, request: Request) -> Response:
        pools = [pool_json(pool) for pool in Pool.objects.select_related("node").order_by("id")]
        return Response({"pools": pools, "count": len(pools)})


class PoolHealthView(OperatorView):
    @extend_schema(summary="A pool's health, load and reload state")
    def get(self, request: Request, pool_id: str) -> Response:
        pool = get_pool(pool_id)
        online = pool.node.status == "online"
        return Response(
            {
                "pool_id": pool.id,
                "live": pool.node.status in ("online", "stale"),
                "ready": pool.ready and online and not pool.is_draining,
                "draining": pool.is_draining,
                "node_id": pool.node_id,
                "engine": pool.engine,
                "engine_version": pool.engine_version,
                "models": list(pool.model_refs),
                "slots_total": pool.slots_total,
                "slots_free": pool.slots_free,
                "active_leases": pool.active_leases,
                "vram_free_bytes": pool.vram_free_bytes,
                "last_heartbeat_ms": epoch_ms(pool.last_heartbeat_at),
                "last_error": pool.last_error or None,
                "reload": reload_json(pool),
                "metrics": runtime_metrics(pool),
            }
        )


class DrainView(OperatorView):
    @extend_schema(summary="Drain a pool", request=DrainSerializer)
    def post(self, request: Request, pool_id: str) -> Response:
        pool = get_pool(pool_id)
        body = DrainSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        deadline_ms = body.validated_data.get("deadline_ms")
        with audited(api_actor(request.user), "pool.drain", pool, source=Source.API, deadline_ms=deadline_ms):
            pool = services.drain_pool(pool, deadline_ms, timezone.now())
        return Response(pool_json(pool), status=status.HTTP_202_ACCEPTED)


class UndrainView(OperatorView):
    @extend_schema(summary="Undo a drain", request=None)
    def post(self, request: Request, pool_id: str) -> Response:
        pool = get_pool(pool_id)
        with audited(api_actor(request.user), "pool.undrain", pool, source=Source.API):
            pool = services.undrain_pool(pool)
        return Response(pool_json(pool), status=status.HTTP_202_ACCEPTED)


class ReloadView(OperatorView):
    @extend_schema(summary="Switch a pool to another model", request=ReloadSerializer)
    def post(self, request: Request, pool_id: str) -> Response:
        pool = get_pool(pool_id)
        body = ReloadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        model_ref = body.validated_data["new_model_ref"]
        with audited(api_actor(request.user), "pool.reload", pool, source=Source.API, model_ref=model_ref):
            pool = services.request_reload(pool, model_ref, timezone.now())
        return Response({"pool_id": pool.id, "reload": reload_json(pool)}, status=status.HTTP_202_ACCEPTED)


class PurgeView(OperatorView):
    @extend_schema(summary="Purge a pool's engine and/or model files (done by the agent)", request=PurgeSerializer)
    def post(self, request: Request, pool_id: str) -> Response:
        pool = get_pool(pool_id)
        body = PurgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        purge = body.to_request()
        with audited(api_actor(request.user), "pool.purge", pool, source=Source.API, **asdict(purge)):
            pool = services.request_purge(pool, purge, timezone.now())
        return Response({"pool_id": pool.id, "purge": pool.purge_request}, status=status.HTTP_202_ACCEPTED)


class StaticWorkerView(OperatorView):
    @extend_schema(summary="Register a standalone engine as a pool", request=StaticWorkerSerializer)
    def post(self, request: Request) -> Response:
        body = StaticWorkerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        pool = services.register_static_pool(body.to_spec())
        return Response(pool_json(pool), status=status.HTTP_201_CREATED)
