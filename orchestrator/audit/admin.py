"""The audit log in the admin: read-only, filterable, newest first."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orchestrator.admin_base import ReadOnlyAdmin
from orchestrator.audit.models import AuditEvent, Outcome

OUTCOME_COLORS = {
    Outcome.SUCCESS: "#007a00",
    Outcome.NOOP: "#666666",
    Outcome.REFUSED: "#996800",
    Outcome.ERROR: "#ba2121",
}


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin[AuditEvent]):
    list_display = ("created_at", "actor", "source", "action", "target_type", "target_id", "outcome_badge")
    list_filter = ("action", "outcome", "source", "target_type", "created_at")
    search_fields = ("actor", "target_id", "correlation_id")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "actor",
        "source",
        "action",
        "target_type",
        "target_id",
        "outcome_badge",
        "details_json",
        "correlation_id",
    )
    readonly_fields = fields

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj: AuditEvent) -> SafeString:
        color = OUTCOME_COLORS.get(Outcome(obj.outcome), "#666666")
        return format_html('<b style="color:{}">{}</b>', color, obj.get_outcome_display())

    @admin.display(description="details")
    def details_json(self, obj: AuditEvent) -> SafeString:
        text = json.dumps(obj.details, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', text)
