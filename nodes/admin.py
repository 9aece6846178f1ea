"""Nodes in the console: status, heartbeat age, their pools, and a confirmed deregister action."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.safestring import SafeString

from nodes.models import Node
from nodes.services import deregister_node
from orchestrator.auth.models import Role
from orchestrator.auth.services import Principal
from orchestrator.console.actions import ConfirmForm, apply_each, confirmed, user_may
from orchestrator.console.display import age, node_badge, slot_bar
from pools.models import Pool


class PoolInline(admin.TabularInline[Pool, Node]):
    model = Pool
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("id", "engine", "model_refs", "slots_label", "ready", "desired_draining", "reload_state", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Node | None = None) -> bool:
        return False

    @admin.display(description="slots in use")
    def slots_label(self, obj: Pool) -> SafeString:
        return slot_bar(obj.active_leases, obj.slots_total)


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin[Node]):
    list_display = ("id", "status_badge", "heartbeat_age", "address", "version", "registered_at")
    list_filter = ("status",)
    search_fields = ("id", "machine_id", "address")
    readonly_fields = (
        "id",
        "machine_id",
        "address",
        "version",
        "capabilities",
        "status",
        "status_badge",
        "heartbeat_age",
        "registered_at",
        "last_heartbeat_at",
        "stale_at",
        "offline_at",
    )
    inlines = (PoolInline,)
    actions = ("deregister",)
    list_per_page = 100

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Node) -> SafeString:
        return node_badge(obj.status)

    @admin.display(description="last heartbeat", ordering="last_heartbeat_at")
    def heartbeat_age(self, obj: Node) -> str:
        return age(obj.last_heartbeat_at, timezone.now())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Node | None = None) -> bool:
        return False  # deregister instead: it also ends the node's running tasks

    def has_deregister_permission(self, request: HttpRequest) -> bool:
        return user_may(request, "nodes.deregister_node")

    @admin.action(description="Deregister selected nodes…", permissions=["deregister"])
    def deregister(self, request: HttpRequest, queryset: QuerySet[Node]) -> TemplateResponse | None:
        operator = Principal(name=request.user.get_username(), role=Role.OPERATOR)

        def perform(form: ConfirmForm) -> None:
            apply_each(
                self,
                request,
                queryset,
                "node.deregister",
                lambda node: deregister_node(node.id, operator),
                done="Deregistered {count} node(s).",
            )

        return confirmed(
            self,
            request,
            queryset,
            title="Deregister nodes",
            verb="Deregister",
            form_class=ConfirmForm,
            perform=perform,
            question="These nodes and their pools leave placement at once; their running tasks end with "
            "WORKER_RESET and queued tasks go elsewhere. A node agent that is still running registers again.",
        )
