"""Tasks in the admin: filters, status, and a cancel action (the API's own service)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from orchestrator.admin_base import ReadOnlyAdmin
from orchestrator.tasks.lifecycle import cancel_task
from orchestrator.tasks.models import DispatcherHeartbeat, ServiceTime, Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin[Task]):
    list_display = (
        "id",
        "state",
        "priority",
        "model_ref",
        "engine",
        "pool_id",
        "tokens_out",
        "created_at",
        "finished_at",
    )
    list_filter = ("state", "priority", "engine", "model_ref", "pool_id")
    search_fields = ("id", "session_id", "model_ref", "pool_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_per_page = 100
    show_full_result_count = False
    actions = ("cancel",)
    exclude = ("prompt", "inputs")

    def get_readonly_fields(self, request: HttpRequest, obj: Task | None = None) -> list[str]:
        return [field.name for field in Task._meta.fields if field.name not in ("prompt", "inputs")]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Cancel selected tasks")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        canceled = sum(cancel_task(task.id, "client") for task in queryset)
        self.message_user(request, f"Canceled {canceled} task(s).", messages.SUCCESS)


@admin.register(DispatcherHeartbeat)
class DispatcherHeartbeatAdmin(ReadOnlyAdmin[DispatcherHeartbeat]):
    list_display = ("owner", "host", "pid", "seen_at")
    ordering = ("-seen_at",)


@admin.register(ServiceTime)
class ServiceTimeAdmin(ReadOnlyAdmin[ServiceTime]):
    list_display = (
        "model_ref",
        "pool_id",
        "first_token_ms",
        "decode_ms_per_token",
        "total_ms",
        "samples",
        "updated_at",
    )
    list_filter = ("model_ref", "pool_id")
