"""Task endpoints (SPEC §3.1, §3.5, §3.6)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.api.errors import invalid_params, not_found
from orchestrator.api.pagination import Pagination
from orchestrator.audit.services import Outcome, Source, api_actor, audited
from orchestrator.auth.services import Principal
from orchestrator.ids import is_valid_id
from orchestrator.tasks.admission import admit_task
from orchestrator.tasks.api.serializers import task_status
from orchestrator.tasks.lifecycle import cancel_task
from orchestrator.tasks.models import Task, TaskState
from orchestrator.tasks.requests import TaskRequestSerializer, accepted_request


def get_task(task_id: str) -> Task:
    task = Task.objects.filter(id=task_id).first() if is_valid_id(task_id) else None
    if task is None:
        raise not_found(f"Task '{task_id}'")
    return task


class TaskCollectionView(APIView):
    @extend_schema(summary="Admit an inference task", request=TaskRequestSerializer, responses={202: dict})
    def post(self, request: Request) -> Response:
        task_request = accepted_request(request.data)
        if task_request is None:  # not the common case: the serializer validates it, and words any error
            body = TaskRequestSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            task_request = body.to_request()
        principal: Principal = request.user  # type: ignore[assignment]
        admission = admit_task(task_request, principal, timezone.now())
        headers = {"Location": f"/v2/tasks/{admission.task.id}", **admission.headers}
        return Response(admission.body, status=status.HTTP_202_ACCEPTED, headers=headers)

    @extend_schema(
        summary="List tasks, newest first",
        parameters=[OpenApiParameter("state", str), OpenApiParameter("session_id", str)],
    )
    def get(self, request: Request) -> Response:
        tasks = Task.objects.order_by("-created_at", "-id")
        state = request.query_params.get("state")
        if state:
            if state not in TaskState.values:
                raise invalid_params(f"Unknown state '{state}'.", {"state": [f"one of {', '.join(TaskState.values)}"]})
            tasks = tasks.filter(state=state)
        session_id = request.query_params.get("session_id")
        if session_id:
            tasks = tasks.filter(session_id=session_id)
        paginator = Pagination()
        page = paginator.paginate_queryset(tasks, request, view=self) or []
        return paginator.get_paginated_response([task_status(task, with_position=False) for task in page])


class TaskDetailView(APIView):
    @extend_schema(summary="A task's status")
    def get(self, request: Request, task_id: str) -> Response:
        return Response(task_status(get_task(task_id)))


class TaskCancelView(APIView):
    @extend_schema(summary="Cancel a task", request=None, responses={204: None})
    def post(self, request: Request, task_id: str) -> Response:
        task = get_task(task_id)
        with audited(api_actor(request.user), "task.cancel", task, source=Source.API) as attempt:
            if not cancel_task(task.id, "client"):
                attempt.outcome = Outcome.NOOP  # already finished: a no-op 204 (SPEC §3.5)
        return Response(status=status.HTTP_204_NO_CONTENT)
