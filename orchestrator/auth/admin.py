"""API tokens in the admin: the value is shown once, right after creation; creation and revocation are audited."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orchestrator.admin_base import ReadOnlyAdmin
from orchestrator.audit.services import Source, record
from orchestrator.auth.models import ApiToken, RateEvent
from orchestrator.auth.services import assign_secret, revoke_token
from orchestrator.console.actions import apply_each


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
        "spend_label",
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

    @admin.display(description="spent / budget")
    def spend_label(self, obj: ApiToken) -> str:
        tokens = f"{obj.tokens_spent} / {_or_unlimited(obj.tokens_budget)} tokens"
        cost = f"{_amount(obj.cost_spent)} / {_or_unlimited(obj.cost_budget)}"
        rate = f" · {obj.requests_per_minute} rpm" if obj.requests_per_minute else ""
        return f"{tokens} · cost {cost}{rate}"

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
        record(
            obj.created_by,
            "token.create",
            obj,
            source=Source.ADMIN,
            fingerprint=f"token:{obj.fingerprint}",
            role=obj.role,
            name=obj.name,
        )
        messages.warning(
            request,
            format_html("Token created. Copy it now — it will not be shown again: <code>{}</code>", value),
        )

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        apply_each(self, request, queryset, "token.revoke", revoke_token, done="Revoked {count} token(s).")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return (*self.readonly_fields, "role")
        return self.readonly_fields


@admin.register(RateEvent)
class RateEventAdmin(ReadOnlyAdmin[RateEvent]):
    """Admissions counted against a token's requests-per-minute limit (embedded mode)."""

    list_display = ("token", "at")
    list_select_related = ("token",)
    ordering = ("-at",)


def _amount(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _or_unlimited(value: int | Decimal | None) -> str:
    if value is None:
        return "∞"
    return _amount(value) if isinstance(value, Decimal) else str(value)
