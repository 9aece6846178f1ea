"""Request validation and response shapes of the artifacts API (SPEC §5)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orchestrator.api.fields import IdField, StrictCharField
from orchestrator.artifacts.models import Artifact, ArtifactKind

# Bounds that keep the tag table and `?tag=` lookups small; transcripts use
# three tags (`sse`, `task:<id>`, `session:<id>`), so 64 leaves ample room.
MAX_TAGS = 64
MAX_TAG_LENGTH = 256


@extend_schema_field(OpenApiTypes.OBJECT)
class JsonObjectField(serializers.Field):  # type: ignore[type-arg]
    """Any JSON object, passed through untouched (its exact form is hashed)."""

    default_error_messages = {"invalid": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class TagField(StrictCharField):
    """A tag: 1-256 characters, no control characters, never trimmed (it is hashed as sent)."""

    default_error_messages = {"control": "Must not contain control characters."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_length=1, max_length=MAX_TAG_LENGTH, trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            self.fail("control")
        return value


class ArtifactCreateSerializer(serializers.Serializer[Any]):
    """The body of `POST /v2/artifacts`; unknown fields are ignored."""

    kind = serializers.ChoiceField(choices=ArtifactKind.choices)
    content = JsonObjectField()
    tags = serializers.ListField(child=TagField(), max_length=MAX_TAGS, required=False)
    # DRF pops declared fields off the class, so this never shadows Field.parent at run time.
    parent = IdField(required=False, allow_null=True)  # type: ignore[assignment]
    metadata = JsonObjectField(required=False)


class ArtifactCreatedSerializer(serializers.Serializer[Any]):
    """`201` answer to a post: where the document lives."""

    id = serializers.CharField()
    kind = serializers.CharField()
    digest = serializers.CharField()
    created_ms = serializers.IntegerField()
    tags = serializers.ListField(child=serializers.CharField())


class ArtifactListItemSerializer(serializers.ModelSerializer[Artifact]):
    """One artifact in a list: everything but the content."""

    digest = serializers.CharField(source="id")
    created_ms = serializers.IntegerField()
    tags = serializers.ListField(child=serializers.CharField())
    metadata = JsonObjectField()

    class Meta:
        model = Artifact
        fields = ("id", "kind", "digest", "created_ms", "tags", "parent", "metadata", "size_bytes")
        read_only_fields = fields


class ArtifactDetailSerializer(serializers.Serializer[Any]):
    """`GET /v2/artifacts/{id}`: the stored document plus its address."""

    id = serializers.CharField()
    digest = serializers.CharField()
    created_ms = serializers.IntegerField()
    kind = serializers.CharField()
    content = JsonObjectField()
    tags = serializers.ListField(child=serializers.CharField())
    parent = serializers.CharField(allow_null=True)  # type: ignore[assignment]  # see ArtifactCreateSerializer
    metadata = JsonObjectField()
