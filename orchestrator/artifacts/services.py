"""Storing and reading artifacts (SPEC §5).

`store_artifact()` is the one way in, for the API and for the data plane's
transcripts alike. Call it outside a transaction: a large content is written
to the storage backend (possibly a network store) before the row is inserted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import IntegrityError, transaction

from orchestrator.artifacts.documents import (
    ArtifactDocument,
    EncodedDocument,
    InvalidDocument,
    build_document,
    canonical_digest,
    canonical_json,
    encode_document,
    looks_like_digest,
)
from orchestrator.artifacts.models import Artifact, ArtifactKind, ArtifactTag
from orchestrator.sql import Select, all_fields, insert, insert_values

__all__ = [
    "ArtifactDocument",
    "InvalidDocument",
    "StoredArtifact",
    "artifact_storage",
    "canonical_digest",
    "canonical_json",
    "delete_artifact",
    "find_artifact",
    "load_document",
    "store_artifact",
]

logger = logging.getLogger("orchestrator.artifacts")

STORAGE_ALIAS = "artifacts"


@dataclass(frozen=True)
class StoredArtifact:
    """The row for a document, and whether this call inserted it."""

    artifact: Artifact
    created: bool


def artifact_storage() -> Storage:
    """The `artifacts` storage, looked up on each use.

    Django caches backends per alias but resets that cache when STORAGES
    changes, so a lookup here (not at import) follows settings overrides.
    """
    return storages[STORAGE_ALIAS]


def store_artifact(
    kind: str,
    content: Mapping[str, Any],
    tags: Iterable[str] | None = None,
    parent: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> StoredArtifact:
    """Store a document once; the same document always yields the same row.

    Raises InvalidDocument for an unknown kind or a string with a NUL, and
    ValueError/TypeError for values that are not JSON.
    """
    if kind not in ArtifactKind.values:
        raise InvalidDocument("kind", f"must be one of {', '.join(ArtifactKind.values)}.")
    document = build_document(kind, content, tags, parent, metadata)
    encoded = encode_document(document)
    existing = find_artifact(encoded.digest)
    if existing is not None:
        return StoredArtifact(existing, created=False)
    return _insert(encoded, document)


def _insert(encoded: EncodedDocument, document: ArtifactDocument) -> StoredArtifact:
    digest, content_bytes = encoded.digest, encoded.content
    inline = len(content_bytes) <= settings.ORCHD_ARTIFACT_INLINE_MAX_BYTES
    content_name, wrote_file = ("", False) if inline else _write_content(digest, content_bytes)
    try:
        with transaction.atomic():
            artifact = Artifact(
                id=digest,
                kind=document["kind"],
                tags=document["tags"],
                parent=document["parent"],
                metadata_json=encoded.metadata.decode("utf-8"),
                content_json=content_bytes.decode("utf-8") if inline else None,
                content_name=content_name,
                size_bytes=len(content_bytes),
            )
            insert(artifact)
            insert_values(ArtifactTag, ("artifact", "tag"), [(digest, tag) for tag in sorted(set(document["tags"]))])
    except IntegrityError:
        # Another request stored the same document between our lookup and our
        # insert: theirs is the row, and a file we wrote under a second name is
        # an orphan.
        winner = Artifact.objects.filter(pk=digest).first()
        if winner is None:
            raise  # not a duplicate: some other constraint failed
        if wrote_file and content_name != winner.content_name:
            artifact_storage().delete(content_name)
        return StoredArtifact(winner, created=False)
    logger.info("artifact.stored", extra={"artifact_id": digest, "kind": document["kind"], "size": len(content_bytes)})
    return StoredArtifact(artifact, created=True)


def _write_content(digest: str, content_bytes: bytes) -> tuple[str, bool]:
    """Put a large content in the storage; (name, whether this call wrote it)."""
    storage = artifact_storage()
    hex_digest = digest.removeprefix("sha256:")
    name = f"{hex_digest[:2]}/{hex_digest}.json"
    # Names are content addresses, so a complete file of the right size is
    # already this content (left by a racing or an interrupted earlier store).
    if storage.exists(name) and storage.size(name) == len(content_bytes):
        return name, False
    # A partial file keeps its name; save() then picks a fresh one beside it.
    return storage.save(name, ContentFile(content_bytes)), True


def find_artifact(artifact_id: str) -> Artifact | None:
    """The artifact with this id, or None (malformed ids never reach the database)."""
    if not looks_like_digest(artifact_id):
        return None
    return _ARTIFACT.first(artifact_id)


# Every task's end looks its transcript up: SQL written once (orchestrator.sql).
_ARTIFACT = Select(Artifact, all_fields(Artifact), '"id" = %s')


def load_document(artifact: Artifact) -> ArtifactDocument:
    """The stored document, reading the content from the file store if needed."""
    if artifact.content_name:
        with artifact_storage().open(artifact.content_name, "rb") as handle:
            content: dict[str, Any] = json.loads(handle.read())
    else:
        content = json.loads(artifact.content_json or "{}")
    return ArtifactDocument(
        kind=artifact.kind,
        content=content,
        tags=list(artifact.tags),
        parent=artifact.parent,
        metadata=artifact.metadata,
    )


def delete_artifact(artifact: Artifact) -> None:
    """Remove an artifact; its file (if any) goes once the deletion is committed."""
    content_name = artifact.content_name
    Artifact.objects.filter(pk=artifact.pk).delete()
    if content_name:
        transaction.on_commit(lambda: artifact_storage().delete(content_name))
    logger.info("artifact.deleted", extra={"artifact_id": artifact.pk})
