"""The catalog in the operator console: entries, their verification history, signing keys.

Edits go through the same validation as the API (the input serializer) and
the same services; the verification fields are the job's and read-only here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from catalog import services
from catalog.api.serializers import ModelInputSerializer
from catalog.models import CatalogModel, ModelState, ModelTag, SigningKey, VerificationRun, VerificationStatus
from catalog.types import ModelAvailability, ModelSpec
from orchestrator.admin_base import ReadOnlyAdmin
from orchestrator.console.actions import apply_each, user_may
from orchestrator.console.display import BAD, MUTED, OK, WARN, badge

BADGE_COLORS = {
    VerificationStatus.PASSED: "#007a00",
    VerificationStatus.FAILED: "#ba2121",
    VerificationStatus.WARNING: "#996800",
    VerificationStatus.PENDING: "#205067",
    VerificationStatus.UNVERIFIED: "#666666",
}
EDITABLE_FIELDS = (
    "id",
    "digest",
    "source_url",
    "tags",
    "manifests",
    "signatures",
    "sbom",
    "trust_policy",
    "ctx_max",
    "cost_per_1k_tokens",
)
MACHINE_FIELDS = (
    "state",
    "retire_deadline_at",
    "verification_status",
    "verification_reason",
    "verification_checked_at",
    "last_verified_at",
    "verification_job_id",
    "created_at",
    "updated_at",
)


class CatalogModelForm(forms.ModelForm[CatalogModel]):
    """Checks the JSON columns with the API's serializer, so both doors accept the same shapes."""

    spec: ModelSpec

    class Meta:
        model = CatalogModel
        fields = EDITABLE_FIELDS

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        model_id = cleaned.get("id") or (self.instance.pk if self.instance else "")
        # Round-trip through JSON so Decimal and dates arrive as the API would see them.
        payload = json.loads(json.dumps({**cleaned, "id": model_id}, default=float))
        serializer = ModelInputSerializer(data=payload)
        if not serializer.is_valid():
            for name, problems in serializer.errors.items():
                self.add_error(name if name in self.fields else None, json.dumps(problems))
            return cleaned
        self.spec = serializer.to_spec(str(model_id))
        return cleaned


class VerificationRunInline(admin.TabularInline[VerificationRun, CatalogModel]):
    model = VerificationRun
    fields = ("id", "status", "reason", "expected_digest", "computed_digest", "created_at", "finished_at")
    readonly_fields = fields
    ordering = ("-created_at",)
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin[CatalogModel]):
    form = CatalogModelForm
    list_display = ("id", "state", "verification_badge", "digest_short", "ctx_max", "cost_per_1k_tokens", "updated_at")
    list_filter = ("state", "verification_status")
    search_fields = ("id", "source_url", "digest")
    readonly_fields = MACHINE_FIELDS
    inlines = (VerificationRunInline,)
    actions = ("verify", "retire", "activate")
    list_per_page = 100

    def get_readonly_fields(self, request: HttpRequest, obj: CatalogModel | None = None) -> Any:
        # The id is the model_ref clients use; renaming would orphan every reference to it.
        return (*MACHINE_FIELDS, "id", "availability") if obj is not None else MACHINE_FIELDS

    def get_list_display(self, request: HttpRequest) -> tuple[str | Callable[[CatalogModel], str | bool], ...]:
        # Availability is computed once per page (two queries), not once per row.
        computed: list[dict[str, ModelAvailability]] = []

        @admin.display(description="availability")
        def availability(obj: CatalogModel) -> SafeString:
            if not computed:
                computed.append({row["model_id"]: row for row in services.availability()["models"]})
            return _availability_badge(computed[0].get(obj.id))

        return (*self.list_display[:3], availability, *self.list_display[3:])

    @admin.display(description="availability (online nodes)")
    def availability(self, obj: CatalogModel) -> SafeString:
        row = next((row for row in services.availability()["models"] if row["model_id"] == obj.id), None)
        if row is None or not row["pools"]:
            return _availability_badge(row)
        return format_html(
            "{} — nodes: {}; pools: {}",
            _availability_badge(row),
            ", ".join(row["nodes"]),
            ", ".join(row["pools"]),
        )

    def has_verify_permission(self, request: HttpRequest) -> bool:
        return user_may(request, "catalog.verify_model")

    def has_retire_permission(self, request: HttpRequest) -> bool:
        return user_may(request, "catalog.retire_model")

    @admin.display(description="verification", ordering="verification_status")
    def verification_badge(self, obj: CatalogModel) -> SafeString:
        color = BADGE_COLORS.get(VerificationStatus(obj.verification_status), "#666666")
        return format_html('<span style="color:{}">{}</span>', color, obj.verification_status)

    @admin.display(description="digest", ordering="digest")
    def digest_short(self, obj: CatalogModel) -> str:
        return obj.digest[:19] + "…" if obj.digest else "—"

    def save_model(self, request: HttpRequest, obj: CatalogModel, form: Any, change: bool) -> None:
        spec: ModelSpec = form.spec
        saved = services.replace_model(obj, spec) if change else services.create_model(spec)
        obj.pk = saved.pk

    @admin.action(description="Verify selected models", permissions=["verify"])
    def verify(self, request: HttpRequest, queryset: QuerySet[CatalogModel]) -> None:
        apply_each(
            self,
            request,
            queryset,
            "model.verify",
            services.request_verification,
            done="Queued verification of {count} model(s).",
        )

    @admin.action(description="Retire selected models", permissions=["retire"])
    def retire(self, request: HttpRequest, queryset: QuerySet[CatalogModel]) -> None:
        self._set_state(request, queryset, ModelState.RETIRED)

    @admin.action(description="Activate selected models", permissions=["retire"])
    def activate(self, request: HttpRequest, queryset: QuerySet[CatalogModel]) -> None:
        self._set_state(request, queryset, ModelState.ACTIVE)

    def _set_state(self, request: HttpRequest, queryset: QuerySet[CatalogModel], state: str) -> None:
        apply_each(
            self,
            request,
            queryset,
            "model.retire" if state == ModelState.RETIRED else "model.activate",
            lambda model: services.set_model_state(model, state),
            done=f"{{count}} model(s) are now {state}.",
        )


def _availability_badge(row: ModelAvailability | None) -> SafeString:
    if row is None or not row["pools"]:
        return badge("not served", MUTED)
    pools = len(row["pools"])
    text = f"{row['ready_pools']}/{pools} pools ready · {row['free_slots']}/{row['total_slots']} slots free"
    tone = OK if row["free_slots"] else WARN if row["ready_pools"] else BAD
    return badge(text, tone)


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin[SigningKey]):
    list_display = ("signer", "algo", "active", "created_at")
    list_filter = ("active", "algo")
    search_fields = ("signer",)
    readonly_fields = ("created_at",)


@admin.register(VerificationRun)
class VerificationRunAdmin(ReadOnlyAdmin[VerificationRun]):
    list_display = ("id", "model", "status", "reason", "created_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("id", "model__id")
    list_select_related = ("model",)


@admin.register(ModelTag)
class ModelTagAdmin(ReadOnlyAdmin[ModelTag]):
    """Index rows mirroring each model's `tags` (edit the model, not these)."""

    list_display = ("name", "model")
    search_fields = ("name",)
    list_select_related = ("model",)
