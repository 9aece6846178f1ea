"""Node endpoints (SPEC §8): register, heartbeat, deregister, list, get."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from nodes import services
from nodes.api.serializers import HeartbeatSerializer, RegisterSerializer, node_json
from nodes.models import Node
from orchestrator import metrics
from orchestrator.api.errors import not_found
from orchestrator.audit.services import Source, api_actor, audited, record
from orchestrator.auth.permissions import IsNode, IsOperator
from orchestrator.auth.services import Principal
from orchestrator.ids import is_valid_id
from pools.api.serializers import report_from


def _nodes_with_pools() -> list[Node]:
    # Pool's default ordering (by id) applies to the prefetch.
    return list(Node.objects.prefetch_related("pools").order_by("id"))


class NodeListView(APIView):
    permission_classes = [IsOperator]

    @extend_schema(summary="List nodes")
    def get(self, request: Request) -> Response:
        nodes = [node_json(node) for node in _nodes_with_pools()]
        return Response({"nodes": nodes, "count": len(nodes)})


class NodeDetailView(APIView):
    def get_permissions(self) -> list[IsNode | IsOperator]:
        return [IsNode()] if self.request.method == "DELETE" else [IsOperator()]

    @extend_schema(summary="Get a node")
    def get(self, request: Request, node_id: str) -> Response:
        node = Node.objects.filter(id=node_id).first() if is_valid_id(node_id) else None
        if node is None:
            raise not_found(f"Node '{node_id}'")
        return Response(node_json(node))

    @extend_schema(summary="Deregister a node", responses={204: None})
    def delete(self, request: Request, node_id: str) -> Response:
        if not is_valid_id(node_id):
            raise not_found(f"Node '{node_id}'")
        principal: Principal = request.user  # type: ignore[assignment]
        with audited(api_actor(principal), "node.deregister", ("nodes.node", node_id), source=Source.API):
            services.deregister_node(node_id, principal)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RegisterView(APIView):
    permission_classes = [IsNode]

    @extend_schema(summary="Register a node and its pools", request=RegisterSerializer)
    def post(self, request: Request) -> Response:
        body = RegisterSerializer(data=request.data)
        if not body.is_valid():
            metrics.orchd_node_registrations_total.labels(outcome="invalid").inc()
            body.is_valid(raise_exception=True)
        principal: Principal = request.user  # type: ignore[assignment]
        result = services.register_node(body.to_registration(), principal, timezone.now())
        answer = {
            "success": True,
            "message": "registered" if result.created else "updated",
            "node_id": result.node.id,
            "heartbeat_interval_ms": settings.ORCHD_HEARTBEAT_INTERVAL_MS,
        }
        if result.node_token:
            answer["node_token"] = result.node_token
            record(api_actor(principal), "token.create", ("nodes.node", result.node.id), source=Source.API, role="node")
        return Response(answer)


class HeartbeatView(APIView):
    permission_classes = [IsNode]

    @extend_schema(
        summary="Report a node's live state; the answer carries the desired state", request=HeartbeatSerializer
    )
    def post(self, request: Request, node_id: str) -> Response:
        if not is_valid_id(node_id):
            raise not_found(f"Node '{node_id}'")
        body = HeartbeatSerializer(data=request.data)
        if not body.is_valid():
            metrics.orchd_node_heartbeats_total.labels(outcome="invalid").inc()
            body.is_valid(raise_exception=True)
        reports = [report_from(item) for item in body.validated_data["pools"]]
        principal: Principal = request.user  # type: ignore[assignment]
        answer = services.record_heartbeat(node_id, reports, principal, timezone.now())
        return Response({"success": True, "next_heartbeat_ms": answer.next_heartbeat_ms, "pools": answer.pools})
