"""Serializer fields for the SPEC's identifiers and strict scalar types."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from orchestrator.ids import MAX_ID_LENGTH, id_error, model_id_error


class IdField(serializers.CharField):
    """A resource id (SPEC §1): validated, never trimmed or coerced."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_ID_LENGTH)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        error = id_error(data)
        if error:
            raise serializers.ValidationError(error)
        return data


class ModelIdField(IdField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        error = model_id_error(data)
        if error:
            raise serializers.ValidationError(error)
        return data


class StrictIntegerField(serializers.IntegerField):
    """An integer that must be a JSON number: "5" and 5.0 and true are refused."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string that must be a JSON string (DRF would turn 5 into "5")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data
