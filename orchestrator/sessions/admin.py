"""Sessions in the admin: budgets are editable, everything tasks write is read-only."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orchestrator.audit.services import Source, audited
from orchestrator.sessions.models import Session
from orchestrator.sessions.services import update_session_budgets

UNLIMITED = "∞"


class LivenessFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "live"), ("expired", "expired (awaiting purge)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        if self.value() == "live":
            return queryset.filter(expires_at__gt=now)
        if self.value() == "expired":
            return queryset.filter(expires_at__lte=now)
        return queryset


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin[Session]):
    list_display = (
        "id",
        "turns",
        "ttl_badge",
        "tokens_remaining",
        "time_remaining",
        "cost_remaining",
        "last_pool_id",
        "kv_warmth",
        "created_at",
    )
    list_filter = (LivenessFilter, "kv_warmth")
    search_fields = ("id", "last_pool_id")
    list_per_page = 100
    show_full_result_count = False
    budget_fields = ("tokens_budget", "time_budget_ms", "cost_budget")
    readonly_fields = (
        "id",
        "ttl_badge",
        "created_at",
        "expires_at",
        "turns",
        "kv_bytes",
        "kv_warmth",
        "last_pool_id",
        "tokens_spent",
        "time_spent_ms",
        "cost_spent",
    )
    fieldsets = (
        (None, {"fields": ("id", "ttl_badge", "created_at", "expires_at", "turns", "last_pool_id")}),
        ("KV cache", {"fields": ("kv_bytes", "kv_warmth")}),
        ("Budgets (empty = unlimited)", {"fields": budget_fields}),
        ("Spent", {"fields": ("tokens_spent", "time_spent_ms", "cost_spent")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the first task naming a session creates it

    def save_model(self, request: HttpRequest, obj: Session, form: ModelForm[Session], change: bool) -> None:
        # Only the budgets: a full save() would write back counters that
        # running tasks may have advanced since the form was loaded.
        budgets = {name: form.cleaned_data[name] for name in self.budget_fields}
        with audited(request.user.get_username(), "session.budgets", obj, source=Source.ADMIN, **budgets):
            update_session_budgets(obj.pk, **budgets)

    @admin.display(description="TTL", ordering="expires_at")
    def ttl_badge(self, obj: Session) -> SafeString:
        now = timezone.now()
        if obj.is_expired(now):
            return format_html('<span style="color:#777">{}</span>', "expired")
        seconds = obj.ttl_ms_remaining(now) // 1000
        return format_html('<span style="color:#007a00">live · {}</span>', f"{seconds // 60}m {seconds % 60:02d}s")

    @admin.display(description="tokens left")
    def tokens_remaining(self, obj: Session) -> str:
        return _or_unlimited(obj.tokens_budget_remaining)

    @admin.display(description="time left (ms)")
    def time_remaining(self, obj: Session) -> str:
        return _or_unlimited(obj.time_budget_remaining_ms)

    @admin.display(description="cost left")
    def cost_remaining(self, obj: Session) -> str:
        return _or_unlimited(obj.cost_budget_remaining)


def _or_unlimited(value: int | Decimal | None) -> str:
    return UNLIMITED if value is None else str(value)
