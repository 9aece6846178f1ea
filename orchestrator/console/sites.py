"""The admin site: its index is the fleet dashboard, refreshed in place from a fragment URL."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path
from django.utils import timezone

from orchestrator.console.dashboard import build_dashboard

# How often the dashboard page fetches a fresh panel: a heartbeat interval
# is 10 s, so 5 s shows every change within one beat without loading the DB.
REFRESH_S = 5


class ConsoleAdminSite(admin.AdminSite):
    site_header = "orchestratord console"
    site_title = "orchestratord"
    index_title = "Fleet dashboard"
    index_template = "console/index.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = {"dashboard": build_dashboard(timezone.now()), "refresh_s": REFRESH_S, **(extra_context or {})}
        return super().index(request, context)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        panel = path("dashboard/panel/", self.admin_view(self.dashboard_panel), name="console_dashboard_panel")
        return [panel, *super().get_urls()]

    def dashboard_panel(self, request: HttpRequest) -> TemplateResponse:
        return TemplateResponse(request, "console/dashboard_panel.html", {"dashboard": build_dashboard(timezone.now())})
