"""API tokens in the admin: the value is shown once, right after creation."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orchestrator.auth.models import ApiToken
from orchestrator.auth.services import assign_secret, revoke_token


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    list_display = (
        "name",
        "role",
        "fingerprint_label",
        "status_badge",
        "node_id",
        "created_at",
        "expires_at",
        "last_used_at",
        "tokens_spent",
        "cost_spent",
    )
    list_filter = ("role", ("revoked_at", admin.EmptyFieldListFilter), "created_at")
    search_fields = ("name", "fingerprint", "node_id")
    readonly_fields = (
        "fingerprint",
        "created_by",
        "created_at",
        "revoked_at",
        "last_used_at",
        "tokens_spent",
        "cost_spent",
    )
    fields = (
        "name",
        "role",
        "node_id",
        "expires_at",
        "tokens_budget",
        "cost_budget",
        "requests_per_minute",
        *readonly_fields,
    )
    actions = ("revoke",)
    list_per_page = 100
    show_full_result_count = False

    @admin.display(description="fingerprint", ordering="fingerprint")
    def fingerprint_label(self, obj: ApiToken) -> str:
        return f"token:{obj.fingerprint}"

    @admin.display(description="status")
    def status_badge(self, obj: ApiToken) -> SafeString:
        if obj.revoked_at:
            return format_html('<span style="color:#ba2121">{}</span>', "revoked")
        if not obj.is_usable(timezone.now()):
            return format_html('<span style="color:#996800">{}</span>', "expired")
        return format_html('<span style="color:#007a00">{}</span>', "active")

    def save_model(self, request: HttpRequest, obj: ApiToken, form: ModelForm[ApiToken], change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        value = assign_secret(obj)
        obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)
        messages.warning(
            request,
            format_html("Token created. Copy it now — it will not be shown again: <code>{}</code>", value),
        )

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = sum(revoke_token(token) for token in queryset)
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return (*self.readonly_fields, "role")
        return self.readonly_fields
