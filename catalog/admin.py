"""The catalog in the operator console: entries, their verification history, signing keys.

Edits go through the same validation as the API (the input serializer) and
the same services; the verification fields are the job's and read-only here.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from catalog import services
from catalog.api.serializers import ModelInputSerializer
from catalog.models import CatalogModel, ModelState, ModelTag, SigningKey, VerificationRun, VerificationStatus
from catalog.types import ModelSpec
from orchestrator.admin_base import ReadOnlyAdmin

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
        return (*MACHINE_FIELDS, "id") if obj is not None else MACHINE_FIELDS

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

    @admin.action(description="Verify selected models")
    def verify(self, request: HttpRequest, queryset: QuerySet[CatalogModel]) -> None:
        for model in queryset:
            services.request_verification(model)
        self.message_user(request, f"Queued verification of {len(queryset)} model(s).", messages.SUCCESS)

    @admin.action(description="Retire selected models")
    def retire(self, request: HttpRequest, queryset: QuerySet[CatalogModel]) -> None:
        self._set_state(request, queryset, ModelState.RETIRED)

    @admin.action(description="Activate selected models")
    def activate(self, request: HttpRequest, queryset: QuerySet[CatalogModel]) -> None:
        self._set_state(request, queryset, ModelState.ACTIVE)

    def _set_state(self, request: HttpRequest, queryset: QuerySet[CatalogModel], state: str) -> None:
        for model in queryset:
            services.set_model_state(model, state)
        self.message_user(request, f"{len(queryset)} model(s) are now {state}.", messages.SUCCESS)


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
