"""Catalog endpoints (SPEC §7): validate, call one service, shape the answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import services
from catalog.api.serializers import (
    AvailabilitySerializer,
    CatalogModelSerializer,
    ModelInputSerializer,
    ModelListQuerySerializer,
    StateChangeSerializer,
    VerifyAcceptedSerializer,
)
from catalog.models import CatalogModel, CatalogModelQuerySet, ModelState, VerificationStatus
from orchestrator.api.errors import invalid_params, not_found
from orchestrator.audit.services import Source, api_actor, audited
from orchestrator.auth.permissions import IsClient, IsOperator
from orchestrator.ids import is_valid_model_id

Handler = TypeVar("Handler", bound=Callable[..., Response])

ERRORS = {
    400: OpenApiResponse(description="INVALID_PARAMS"),
    401: OpenApiResponse(description="MISSING_TOKEN / BAD_TOKEN"),
    403: OpenApiResponse(description="FORBIDDEN"),
    404: OpenApiResponse(description="NOT_FOUND"),
}


MODEL_ID = OpenApiParameter(
    "model_id", str, OpenApiParameter.PATH, description="The model_ref; may contain '/' (e.g. hf:org/repo/file.gguf)."
)


def doc(operation_id: str, summary: str, **kwargs: Any) -> Callable[[Handler], Handler]:
    """`extend_schema` with the catalog tag, so every endpoint is grouped in /v2/docs."""
    return extend_schema(tags=["catalog"], operation_id=operation_id, summary=summary, **kwargs)


def model_or_404(model_id: str) -> CatalogModel:
    """The entry named in the path; a malformed id can't name one, so it is a 404 as well."""
    model = CatalogModel.objects.filter(pk=model_id).first() if is_valid_model_id(model_id) else None
    if model is None:
        raise not_found(f"Model '{model_id}'")
    return model


class CatalogView(GenericAPIView[CatalogModel]):
    """Reads need a client token, writes an operator token (SPEC §2)."""

    serializer_class = CatalogModelSerializer
    filter_backends: Sequence[Any] = ()

    def get_permissions(self) -> Sequence[BasePermission]:
        if self.request.method in SAFE_METHODS:
            return [IsClient()]
        return [IsOperator()]


class ModelListView(CatalogView):
    @doc(
        "catalog_models_list",
        "List catalog entries",
        description="Filter by `state` (Active|Retired) and `tag`; paginated with `limit` and `offset`.",
        parameters=[ModelListQuerySerializer],
        responses={200: CatalogModelSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = ModelListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = self.paginate_queryset(_filtered(query.validated_data))
        return self.get_paginated_response(CatalogModelSerializer(page, many=True).data)

    @doc(
        "catalog_models_create",
        "Add a catalog entry",
        description="Operator only. A missing id is 400 'id required'; an existing id is 409 CONFLICT.",
        request=ModelInputSerializer,
        responses={201: CatalogModelSerializer, 409: OpenApiResponse(description="CONFLICT"), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        body = request.data
        if body.get("id") in (None, ""):
            raise invalid_params("id required", details={"id": ["This field is required."]})
        serializer = ModelInputSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        model = services.create_model(serializer.to_spec(serializer.validated_data["id"]))
        return Response(CatalogModelSerializer(model).data, status=status.HTTP_201_CREATED)


def _filtered(query: dict[str, Any]) -> CatalogModelQuerySet:
    models = CatalogModel.objects.for_listing()
    if query.get("state"):
        models = models.in_state(query["state"])
    if query.get("tag"):
        models = models.tagged(query["tag"])
    return models


class ModelDetailView(CatalogView):
    @doc(
        "catalog_models_retrieve",
        "Read one catalog entry",
        parameters=[MODEL_ID],
        responses={200: CatalogModelSerializer, **ERRORS},
    )
    def get(self, request: Request, model_id: str) -> Response:
        return Response(CatalogModelSerializer(model_or_404(model_id)).data)

    @doc(
        "catalog_models_replace",
        "Create or replace a catalog entry",
        description="Operator only. 201 when created, 200 when replaced. A body id must equal the path's. "
        "Omitting `state` keeps the current one; changing digest, source or signatures resets verification.",
        parameters=[MODEL_ID],
        request=ModelInputSerializer,
        responses={200: CatalogModelSerializer, 201: CatalogModelSerializer, **ERRORS},
    )
    def put(self, request: Request, model_id: str) -> Response:
        if not is_valid_model_id(model_id):
            raise not_found(f"Model '{model_id}'")
        serializer = ModelInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body_id = serializer.validated_data.get("id")
        if body_id is not None and body_id != model_id:
            raise invalid_params("The body's id must match the path.", details={"id": ["must match the path"]})
        model, created = services.put_model(serializer.to_spec(model_id))
        answer = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(CatalogModelSerializer(model).data, status=answer)

    @doc(
        "catalog_models_destroy",
        "Delete a catalog entry",
        description="Operator only. Removes the entry and its verification history; model files are never deleted.",
        parameters=[MODEL_ID],
        responses={204: None, **ERRORS},
    )
    def delete(self, request: Request, model_id: str) -> Response:
        model = model_or_404(model_id)
        with audited(api_actor(request.user), "model.delete", model, source=Source.API):
            services.delete_model(model)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VerifyModelView(APIView):
    permission_classes = [IsOperator]

    @doc(
        "catalog_models_verify",
        "Verify the model file",
        description="Operator only. Queues a job that hashes the file and checks signatures; `job_id` names it.",
        parameters=[MODEL_ID],
        request=None,
        responses={202: VerifyAcceptedSerializer, **ERRORS},
    )
    def post(self, request: Request, model_id: str) -> Response:
        model = model_or_404(model_id)
        with audited(api_actor(request.user), "model.verify", model, source=Source.API):
            run = services.request_verification(model)
        # Pending as of this request: an eager or fast worker may already have finished.
        body = {"id": model.id, "verification": {"status": VerificationStatus.PENDING}, "job_id": str(run.id)}
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ModelStateView(APIView):
    permission_classes = [IsOperator]

    @doc(
        "catalog_models_state",
        "Activate or retire a model",
        description="Operator only. Retiring stops new admissions at once; running tasks finish, or are "
        "canceled after `deadline_ms`.",
        parameters=[MODEL_ID],
        request=StateChangeSerializer,
        responses={202: CatalogModelSerializer, **ERRORS},
    )
    def post(self, request: Request, model_id: str) -> Response:
        model = model_or_404(model_id)
        change = StateChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        state, deadline_ms = change.validated_data["state"], change.validated_data["deadline_ms"]
        action = "model.retire" if state == ModelState.RETIRED else "model.activate"
        with audited(api_actor(request.user), action, model, source=Source.API, deadline_ms=deadline_ms):
            model = services.set_model_state(model, state, deadline_ms)
        return Response(CatalogModelSerializer(model).data, status=status.HTTP_202_ACCEPTED)


class AvailabilityView(APIView):
    permission_classes = [IsClient]

    @doc(
        "catalog_availability",
        "Where models are served",
        description="Per model: nodes, pools, ready pools and slots, over pools on online nodes only.",
        responses={200: AvailabilitySerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response(services.availability())
