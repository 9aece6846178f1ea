"""Mounted at `v2/sessions/`."""

from django.urls import URLPattern, URLResolver, path

from orchestrator.sessions.api.views import SessionDetailView

urlpatterns: list[URLPattern | URLResolver] = [
    path("<str:session_id>", SessionDetailView.as_view(), name="session-detail"),
]
