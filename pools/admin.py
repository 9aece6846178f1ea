"""Pools in the admin: readiness, slots, desired state; drain and undrain call the API's services."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from pools.models import Pool
from pools.services import drain_pool, undrain_pool


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin[Pool]):
    list_display = (
        "id",
        "node",
        "engine",
        "engine_version",
        "slots_total",
        "active_leases",
        "ready",
        "desired_draining",
        "reload_state",
        "last_heartbeat_at",
    )
    list_filter = ("engine", "ready", "desired_draining", "reload_state")
    search_fields = ("id", "node__id", "engine_url")
    list_select_related = ("node",)
    readonly_fields = [field.name for field in Pool._meta.fields]
    actions = ("drain", "undrain")
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Drain selected pools (no new tasks; running tasks finish)")
    def drain(self, request: HttpRequest, queryset: QuerySet[Pool]) -> None:
        for pool in queryset:
            drain_pool(pool, None, timezone.now())
        self.message_user(request, f"Draining {queryset.count()} pool(s).", messages.SUCCESS)

    @admin.action(description="Undrain selected pools")
    def undrain(self, request: HttpRequest, queryset: QuerySet[Pool]) -> None:
        for pool in queryset:
            undrain_pool(pool)
        self.message_user(request, f"Undrained {queryset.count()} pool(s).", messages.SUCCESS)
