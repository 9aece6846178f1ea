"""Meta endpoints: capabilities, version, liveness, readiness and /metrics."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator import heap
from orchestrator.api.errors import ApiError, api_error_from, error_response, internal_error
from orchestrator.auth.authentication import authenticate_request
from orchestrator.db import statements
from orchestrator.meta.capabilities import capabilities, version
from orchestrator.meta.readiness import probe_all
from orchestrator.metrics import StateCollector


class CapabilitiesView(APIView):
    @extend_schema(
        summary="What the live fleet can run",
        responses=inline_serializer(
            "Capabilities", {"api_version": serializers.CharField(), "engines": serializers.ListField()}
        ),
    )
    def get(self, request: Request) -> Response:
        return Response(capabilities())


class VersionView(APIView):
    @extend_schema(
        summary="Build information",
        responses=inline_serializer(
            "Version",
            {
                "api_version": serializers.CharField(),
                "build_commit": serializers.CharField(),
                "build_time": serializers.CharField(),
                "version": serializers.CharField(),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        return Response(version())


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests."""
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database, the channel layer and the broker all answer."""
    results = await probe_all()
    checks = {result.component: result.detail for result in results}
    failing = [result.component for result in results if not result.ok]
    if failing:
        return error_response(
            ApiError(
                503,
                "NOT_READY",
                f"Not ready: {', '.join(failing)} unreachable.",
                retry_after_ms=1000,
                details={"failing": failing, "checks": checks},
            )
        )
    return JsonResponse({"status": "ready", "checks": checks})


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format: process counters plus state gauges read from the DB."""
    if settings.ORCHD_METRICS_TOKEN_REQUIRED:
        denied = _metrics_auth_error(request)
        if denied is not None:
            return denied
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector())
    statements.flush()  # this process's statements so far, tallied in memory
    heap.flush()  # and its collector's pauses
    if settings.ORCHD_METRICS_DIR:
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        body = generate_latest(merged)
    else:
        body = generate_latest(REGISTRY)
    return HttpResponse(body + generate_latest(state), content_type=CONTENT_TYPE_LATEST)


def _metrics_auth_error(request: HttpRequest) -> HttpResponse | None:
    try:
        principal = authenticate_request(request)
    except APIException as exc:
        return error_response(api_error_from(exc) or internal_error())
    if principal is None:
        return error_response(
            ApiError(401, "MISSING_TOKEN", "/metrics needs an 'Authorization: Bearer <token>' header.")
        )
    return None
