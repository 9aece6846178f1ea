"""Tasks in the console: filters, a live view that tails the task's stream, and a confirmed cancel.

Cancel calls the API's own service (lifecycle.cancel_task) and is recorded in
the audit log. It is gated by `tasks.change_task`: cancelling is the only
change the console makes to a task, every field being read-only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orchestrator.admin_base import ReadOnlyAdmin
from orchestrator.console.actions import ConfirmForm, apply_each, confirmed, user_may
from orchestrator.console.display import BAD, INFO, MUTED, OK, WARN, badge
from orchestrator.tasks.lifecycle import LIVE_STATES, cancel_task
from orchestrator.tasks.models import DispatcherHeartbeat, ServiceTime, Task, TaskState

STATE_TONES = {
    TaskState.QUEUED: INFO,
    TaskState.DISPATCHED: INFO,
    TaskState.RUNNING: OK,
    TaskState.COMPLETED: MUTED,
    TaskState.CANCELED: WARN,
    TaskState.FAILED: BAD,
    TaskState.EXPIRED: BAD,
    TaskState.DROPPED: BAD,
}


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin[Task]):
    list_display = (
        "id",
        "state_badge",
        "priority",
        "model_ref",
        "engine",
        "pool_id",
        "tokens_out",
        "error_code",
        "created_at",
        "finished_at",
        "live_link",
    )
    list_filter = ("state", "priority", "model_ref", "pool_id", "engine")
    search_fields = ("id", "session_id", "model_ref", "pool_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_per_page = 100
    show_full_result_count = False
    actions = ("cancel",)
    exclude = ("prompt", "inputs")

    def get_readonly_fields(self, request: HttpRequest, obj: Task | None = None) -> list[str]:
        return ["live_link", *(field.name for field in Task._meta.fields if field.name not in ("prompt", "inputs"))]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return user_may(request, "tasks.change_task")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Nothing on the page is editable, so no save buttons (change permission only gates cancel).
        hidden = {"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False}
        return super().change_view(request, object_id, form_url, {**hidden, **(extra_context or {})})

    def get_urls(self) -> list[URLPattern]:
        live = path("<str:task_id>/live/", self.admin_site.admin_view(self.live_view), name="tasks_task_live")
        return [live, *super().get_urls()]

    def live_view(self, request: HttpRequest, task_id: str) -> TemplateResponse:
        """The task's SSE stream, tailed in the page (console/live.js); the stream accepts the staff session."""
        task = self.get_object(request, task_id)
        if task is None:
            raise Http404(f"No task '{task_id}'.")
        if not self.has_view_permission(request, task):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": f"Live: {task.id}",
            "opts": Task._meta,
            "task": task,
            "events_url": reverse("task-events", args=[task.id]),
            "can_cancel": task.state in LIVE_STATES and self.has_cancel_permission(request),
            "changelist_url": reverse("admin:tasks_task_changelist"),
        }
        return TemplateResponse(request, "console/task_live.html", context)

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: Task) -> SafeString:
        return badge(obj.state, STATE_TONES.get(TaskState(obj.state), MUTED))

    @admin.display(description="error")
    def error_code(self, obj: Task) -> str:
        return str((obj.error or {}).get("code", "")) or "—"

    @admin.display(description="live view")
    def live_link(self, obj: Task) -> SafeString:
        return format_html('<a href="{}">live</a>', reverse("admin:tasks_task_live", args=[obj.id]))

    @admin.action(description="Cancel selected tasks…", permissions=["cancel"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Task]) -> TemplateResponse | None:
        def perform(form: ConfirmForm) -> None:
            apply_each(
                self,
                request,
                queryset,
                "task.cancel",
                lambda task: cancel_task(task.id, "client"),
                done="Canceled {count} task(s).",
            )

        return confirmed(
            self,
            request,
            queryset,
            title="Cancel tasks",
            verb="Cancel tasks",
            form_class=ConfirmForm,
            perform=perform,
            question="Queued tasks leave the queue; running ones stop at once and their streams end with "
            "canceled: true. Finished tasks are left as they are.",
        )


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
