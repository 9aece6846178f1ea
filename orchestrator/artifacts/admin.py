"""Artifacts in the admin: read-only, with the document shown as it was stored."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from orchestrator.admin_base import ReadOnlyAdmin
from orchestrator.artifacts.models import Artifact, ArtifactKind, ArtifactTag
from orchestrator.artifacts.services import delete_artifact, load_document

# A transcript table longer than this is unreadable in a page anyway; the
# full document stays one click away in the JSON block.
MAX_EVENT_ROWS = 500
PRE_STYLE = "white-space:pre-wrap;max-height:40em;overflow:auto"


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin[Artifact]):
    list_display = ("short_id_label", "kind", "tags_label", "size_label", "parent", "created_at")
    list_filter = ("kind", "created_at")
    search_fields = ("id", "tag_rows__tag", "parent")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_per_page = 100
    show_full_result_count = False
    fields = ("id", "kind", "tags", "parent", "size_label", "storage_label", "created_at", "document", "transcript")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Artifact]:
        # The change list never shows contents; the detail page reads them via load_document().
        return super().get_queryset(request).defer("content_json")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Artifact | None = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Artifact) -> None:
        delete_artifact(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Artifact]) -> None:
        for artifact in queryset:
            delete_artifact(artifact)

    @admin.display(description="id", ordering="id")
    def short_id_label(self, obj: Artifact) -> str:
        return f"{obj.short_id}…"

    @admin.display(description="tags")
    def tags_label(self, obj: Artifact) -> str:
        return ", ".join(obj.tags)

    @admin.display(description="size", ordering="size_bytes")
    def size_label(self, obj: Artifact) -> str:
        return str(filesizeformat(obj.size_bytes))

    @admin.display(description="stored in")
    def storage_label(self, obj: Artifact) -> str:
        return f"file store: {obj.content_name}" if obj.in_file_store else "database"

    @admin.display(description="document")
    def document(self, obj: Artifact) -> SafeString:
        text = json.dumps(load_document(obj), indent=2, ensure_ascii=False, sort_keys=True)
        return format_html('<pre style="{}">{}</pre>', PRE_STYLE, text)

    @admin.display(description="transcript")
    def transcript(self, obj: Artifact) -> SafeString | str:
        if obj.kind != ArtifactKind.TRANSCRIPT:
            return "—"
        events = _events(load_document(obj)["content"])
        text = "".join(_token_text(data) for name, data in events if name == "token")
        others = [(name, json.dumps(data, ensure_ascii=False)) for name, data in events if name != "token"]
        rows = format_html_join("", "<tr><td>{}</td><td><code>{}</code></td></tr>", others[:MAX_EVENT_ROWS])
        return format_html(
            '<p>Generated text:</p><pre style="{}">{}</pre>'
            "<p>Other events ({}):</p><table><thead><tr><th>event</th><th>data</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            PRE_STYLE,
            text,
            len(others),
            rows,
        )


def _events(content: dict[str, Any]) -> list[tuple[str, Any]]:
    """(event, data) pairs of a transcript, skipping anything malformed."""
    raw = content.get("events")
    if not isinstance(raw, list):
        return []
    return [(str(item.get("event", "")), item.get("data")) for item in raw if isinstance(item, dict)]


def _token_text(data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("t"), str):
        return str(data["t"])
    return ""


@admin.register(ArtifactTag)
class ArtifactTagAdmin(ReadOnlyAdmin[ArtifactTag]):
    """Index rows mirroring each artifact's `tags`."""

    list_display = ("tag", "artifact")
    search_fields = ("tag",)
    list_select_related = ("artifact",)
