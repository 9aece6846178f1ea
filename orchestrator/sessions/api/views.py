"""`/v2/sessions/{id}`: read and delete a session (SPEC §4)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.api.errors import not_found
from orchestrator.ids import is_valid_id
from orchestrator.sessions.api.serializers import SessionSerializer
from orchestrator.sessions.services import delete_session, get_live_session


class SessionDetailView(APIView):
    """A session is created by the first task naming it; clients only read and delete."""

    @extend_schema(summary="Read a session", responses={200: SessionSerializer})
    def get(self, request: Request, session_id: str) -> Response:
        now = timezone.now()
        session = get_live_session(session_id, now) if is_valid_id(session_id) else None
        if session is None:
            raise not_found("The session")
        answer = {
            "session_id": session.id,
            "ttl_ms_remaining": session.ttl_ms_remaining(now),
            "turns": session.turns,
            "kv_bytes": session.kv_bytes,
            "kv_warmth": session.kv_warmth,
            "tokens_budget_remaining": session.tokens_budget_remaining,
            "time_budget_remaining_ms": session.time_budget_remaining_ms,
            "cost_budget_remaining": session.cost_budget_remaining,
            "last_pool_id": session.last_pool_id,
        }
        return Response(SessionSerializer(answer).data)

    @extend_schema(summary="Delete a session", responses={204: None})
    def delete(self, request: Request, session_id: str) -> Response:
        # Idempotent (SPEC §4): an unknown session is already gone. A path that
        # cannot be an id at all is a 404, as everywhere else (SPEC §1).
        if not is_valid_id(session_id):
            raise not_found("The session")
        delete_session(session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
