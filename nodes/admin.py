"""Nodes in the admin: status, liveness, and their pools."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from nodes.models import Node, NodeStatus
from nodes.services import deregister_node
from orchestrator.auth.services import Principal
from pools.models import Pool

STATUS_COLORS = {
    NodeStatus.ONLINE: "#007a00",
    NodeStatus.STALE: "#996800",
    NodeStatus.OFFLINE: "#ba2121",
    NodeStatus.REGISTERING: "#555",
}


class PoolInline(admin.TabularInline[Pool, Node]):
    model = Pool
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("id", "engine", "model_refs", "slots_total", "active_leases", "ready", "desired_draining", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Node | None = None) -> bool:
        return False


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
        return format_html('<b style="color:{}">{}</b>', STATUS_COLORS.get(NodeStatus(obj.status), "#555"), obj.status)

    @admin.display(description="last heartbeat", ordering="last_heartbeat_at")
    def heartbeat_age(self, obj: Node) -> str:
        if obj.last_heartbeat_at is None:
            return "never"
        return f"{int((timezone.now() - obj.last_heartbeat_at).total_seconds())} s ago"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Deregister selected nodes (their pools leave placement)")
    def deregister(self, request: HttpRequest, queryset: QuerySet[Node]) -> None:
        operator = Principal(name=request.user.get_username(), role="operator")
        for node in queryset:
            deregister_node(node.id, operator)
        self.message_user(request, f"Deregistered {queryset.count()} node(s).", messages.SUCCESS)
