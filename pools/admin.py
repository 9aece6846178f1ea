"""Pools in the console: slots, state and progress; drain, undrain, reload and purge, each confirmed.

Every action calls the same service as the API (pools.services) and is
recorded in the audit log; each is gated by its own permission, which the
`operators` group has and `viewers` lack.
"""

from __future__ import annotations

from dataclasses import asdict

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.safestring import SafeString

from orchestrator.console.actions import ConfirmForm, apply_each, confirmed, user_may
from orchestrator.console.display import age, pool_badge, pool_progress, slot_bar
from pools.forms import DrainForm, PurgeForm, ReloadForm
from pools.models import Pool
from pools.services import drain_pool, request_purge, request_reload, undrain_pool


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin[Pool]):
    list_display = (
        "id",
        "node",
        "engine",
        "models_label",
        "slots_label",
        "state_badge",
        "heartbeat_age",
        "progress",
    )
    list_filter = ("engine", "ready", "desired_draining", "reload_state", "node__status")
    search_fields = ("id", "node__id", "engine_url")
    list_select_related = ("node",)
    fieldsets = (
        (None, {"fields": ("id", "node", "engine", "engine_url", "engine_version", "model_refs", "ctx_max")}),
        (
            "Live state (from heartbeats)",
            {
                "fields": (
                    "state_badge",
                    "slots_label",
                    "slots_free",
                    "ready",
                    "draining",
                    "heartbeat_age",
                    "last_error",
                    "device_mask",
                    "vram_total_bytes",
                    "vram_free_bytes",
                )
            },
        ),
        (
            "Drain, reload and purge",
            {
                "fields": (
                    "progress",
                    "desired_draining",
                    "drain_started_at",
                    "drain_deadline_at",
                    "drained_at",
                    "desired_model_ref",
                    "reload_state",
                    "reload_model_ref",
                    "reload_error",
                    "reload_requested_at",
                    "purge_request",
                )
            },
        ),
        (None, {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = [
        *(field.name for field in Pool._meta.fields),
        "state_badge",
        "slots_label",
        "heartbeat_age",
        "progress",
    ]
    actions = ("drain", "undrain", "reload", "purge")
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Pool | None = None) -> bool:
        return False  # pools leave with their node (deregister) or its next registration

    def has_drain_permission(self, request: HttpRequest) -> bool:
        return user_may(request, "pools.drain_pool")

    def has_reload_permission(self, request: HttpRequest) -> bool:
        return user_may(request, "pools.reload_pool")

    def has_purge_permission(self, request: HttpRequest) -> bool:
        return user_may(request, "pools.purge_pool")

    @admin.display(description="models")
    def models_label(self, obj: Pool) -> str:
        return ", ".join(obj.model_refs or [])

    @admin.display(description="slots in use", ordering="active_leases")
    def slots_label(self, obj: Pool) -> SafeString:
        return slot_bar(obj.active_leases, obj.slots_total)

    @admin.display(description="state")
    def state_badge(self, obj: Pool) -> SafeString:
        return pool_badge(obj)

    @admin.display(description="last heartbeat", ordering="last_heartbeat_at")
    def heartbeat_age(self, obj: Pool) -> str:
        return age(obj.last_heartbeat_at, timezone.now())

    @admin.display(description="progress")
    def progress(self, obj: Pool) -> str:
        return pool_progress(obj, timezone.now()) or "—"

    @admin.action(description="Drain selected pools…", permissions=["drain"])
    def drain(self, request: HttpRequest, queryset: QuerySet[Pool]) -> TemplateResponse | None:
        def perform(form: DrainForm) -> None:
            now, deadline_ms = timezone.now(), form.deadline_ms()
            apply_each(
                self,
                request,
                queryset,
                "pool.drain",
                lambda pool: drain_pool(pool, deadline_ms, now),
                done="Draining {count} pool(s): they take no new tasks.",
                deadline_ms=deadline_ms,
            )

        return confirmed(
            self,
            request,
            queryset,
            title="Drain pools",
            verb="Drain",
            form_class=DrainForm,
            perform=perform,
            question="These pools will take no new tasks; running tasks may finish until the deadline.",
        )

    @admin.action(description="Undrain selected pools…", permissions=["drain"])
    def undrain(self, request: HttpRequest, queryset: QuerySet[Pool]) -> TemplateResponse | None:
        def perform(form: ConfirmForm) -> None:
            apply_each(self, request, queryset, "pool.undrain", undrain_pool, done="Undrained {count} pool(s).")

        return confirmed(
            self,
            request,
            queryset,
            title="Undrain pools",
            verb="Undrain",
            form_class=ConfirmForm,
            perform=perform,
            question="These pools will take new tasks again:",
        )

    @admin.action(description="Reload selected pools with another model…", permissions=["reload"])
    def reload(self, request: HttpRequest, queryset: QuerySet[Pool]) -> TemplateResponse | None:
        def perform(form: ReloadForm) -> None:
            now, model_ref = timezone.now(), form.cleaned_data["model"].id
            apply_each(
                self,
                request,
                queryset,
                "pool.reload",
                lambda pool: request_reload(pool, model_ref, now),
                done=f"Asked {{count}} pool(s) to reload with {model_ref}.",
                model_ref=model_ref,
            )

        return confirmed(
            self, request, queryset, title="Reload pools", verb="Reload", form_class=ReloadForm, perform=perform
        )

    @admin.action(description="Purge selected pools…", permissions=["purge"])
    def purge(self, request: HttpRequest, queryset: QuerySet[Pool]) -> TemplateResponse | None:
        def perform(form: PurgeForm) -> None:
            now, purge = timezone.now(), form.to_request()
            apply_each(
                self,
                request,
                queryset,
                "pool.purge",
                lambda pool: request_purge(pool, purge, now),
                done="Asked {count} pool(s) to purge.",
                **asdict(purge),
            )

        return confirmed(
            self, request, queryset, title="Purge pools", verb="Purge", form_class=PurgeForm, perform=perform
        )
