"""`/v2/artifacts`: thin views over the artifacts services (SPEC §5)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.api.errors import invalid_params, not_found
from orchestrator.artifacts.api.serializers import (
    ArtifactCreatedSerializer,
    ArtifactCreateSerializer,
    ArtifactDetailSerializer,
    ArtifactListItemSerializer,
)
from orchestrator.artifacts.filters import ArtifactFilterSet
from orchestrator.artifacts.models import Artifact, ArtifactQuerySet
from orchestrator.artifacts.services import InvalidDocument, find_artifact, load_document, store_artifact


class ArtifactCollectionView(generics.ListAPIView[Artifact]):
    """`POST` stores a document; `GET` lists artifacts, newest first, without contents."""

    serializer_class = ArtifactListItemSerializer
    filterset_class = ArtifactFilterSet

    def get_queryset(self) -> ArtifactQuerySet:
        return Artifact.objects.for_listing()

    @extend_schema(
        summary="List artifacts",
        parameters=[OpenApiParameter("tag", str, many=True, description="Repeat to require several tags.")],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Store an artifact",
        request=ArtifactCreateSerializer,
        responses={201: ArtifactCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        body = ArtifactCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            stored = store_artifact(**body.validated_data)
        except InvalidDocument as exc:
            raise invalid_params(f"Invalid field: {exc.field}.", {exc.field: [exc.message]}) from exc
        artifact = stored.artifact
        answer = {
            "id": artifact.id,
            "kind": artifact.kind,
            "digest": artifact.id,
            "created_ms": artifact.created_ms,
            "tags": artifact.tags,
        }
        return Response(ArtifactCreatedSerializer(answer).data, status=status.HTTP_201_CREATED)


class ArtifactDetailView(APIView):
    """`GET /v2/artifacts/{id}`: the stored document plus `id`, `digest`, `created_ms`."""

    @extend_schema(summary="Read an artifact", responses={200: ArtifactDetailSerializer})
    def get(self, request: Request, artifact_id: str) -> Response:
        artifact = find_artifact(artifact_id)
        if artifact is None:
            raise not_found("The artifact")
        document = load_document(artifact)
        answer = {**document, "id": artifact.id, "digest": artifact.id, "created_ms": artifact.created_ms}
        return Response(ArtifactDetailSerializer(answer).data)
