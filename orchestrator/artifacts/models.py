"""Artifacts: immutable, content-addressed JSON documents (SPEC §5)."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.utils import timezone


class ArtifactKind(models.TextChoices):
    PLAN = "plan", "plan"
    SUMMARY = "summary", "summary"
    DIFF = "diff", "diff"
    TRACE = "trace", "trace"
    TRANSCRIPT = "transcript", "transcript"
    LOGS = "logs", "logs"
    OTHER = "other", "other"


class ArtifactQuerySet(models.QuerySet["Artifact"]):
    def tagged(self, *tags: str) -> ArtifactQuerySet:
        """Artifacts carrying every one of `tags`.

        Each tag is its own join on the indexed tag table, which works the same
        on SQLite and PostgreSQL (JSON `contains` does not exist on SQLite).
        """
        queryset = self
        for tag in tags:
            queryset = queryset.filter(tag_rows__tag=tag)
        return queryset

    def for_listing(self) -> ArtifactQuerySet:
        """Newest first, without loading contents that a list never shows."""
        return self.defer("content_json").order_by("-created_at", "-id")


class Artifact(models.Model):
    """One stored document; its id is the digest of the document itself.

    Rows are never updated: posting the same document again finds the same
    row. The content is kept as its canonical JSON text — inline when small,
    in the `artifacts` storage (`content_name`) when larger than
    ORCHD_ARTIFACT_INLINE_MAX_BYTES — so what is read back is byte for byte
    what was hashed. (PostgreSQL jsonb would rewrite numbers such as 1e2 as
    100 and change the document under its own digest.) Metadata is kept as
    canonical text for the same reason.
    """

    id = models.CharField(primary_key=True, max_length=71, help_text="sha256:<hex> of the canonical document.")
    kind = models.CharField(max_length=16, choices=ArtifactKind.choices)
    tags = models.JSONField(default=list, blank=True, help_text="Sorted, as hashed.")
    parent = models.CharField(max_length=128, null=True, blank=True)
    metadata_json = models.TextField(default="{}", help_text="Canonical JSON of the metadata object.")
    content_json = models.TextField(null=True, blank=True, help_text="Canonical JSON; null when in the file store.")
    content_name = models.CharField(max_length=255, blank=True, default="", help_text="Name in the artifacts storage.")
    size_bytes = models.BigIntegerField(help_text="Size of the content's canonical JSON.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = ArtifactQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The list endpoint: newest first, optionally of one kind.
            models.Index(fields=["-created_at"], name="artifact_created_at"),
            models.Index(fields=["kind", "-created_at"], name="artifact_kind_created_at"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.short_id}"

    @property
    def short_id(self) -> str:
        return self.id[:19]

    @property
    def metadata(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.metadata_json)
        return value

    @property
    def created_ms(self) -> int:
        return int(self.created_at.timestamp() * 1000)

    @property
    def in_file_store(self) -> bool:
        return bool(self.content_name)


class ArtifactTag(models.Model):
    """One (artifact, tag) pair: the index behind `?tag=` on every database."""

    artifact = models.ForeignKey(Artifact, on_delete=models.CASCADE, related_name="tag_rows")
    tag = models.CharField(max_length=256)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["artifact", "tag"], name="artifact_tag_unique")]
        indexes = [models.Index(fields=["tag", "artifact"], name="artifact_tag_lookup")]

    def __str__(self) -> str:
        return self.tag
