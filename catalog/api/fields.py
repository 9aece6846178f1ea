"""Strict serializer fields for catalog shapes: a wrong JSON type is a 400, never coerced."""

from __future__ import annotations

import base64
import binascii
import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from rest_framework import serializers

from orchestrator.api.fields import StrictCharField

DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
TAG_PATTERN = re.compile(r"^[A-Za-z0-9._:/=+-]{1,64}$")
# Ed25519 signatures are 64 bytes; leave room for other algorithms later.
MAX_SIGNATURE_CHARS = 1024


class DigestField(StrictCharField):
    """`sha256:` followed by 64 lowercase hex digits."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value and not DIGEST_PATTERN.fullmatch(value):
            raise serializers.ValidationError("must be 'sha256:' followed by 64 lowercase hex digits")
        return value


class TagField(StrictCharField):
    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not TAG_PATTERN.fullmatch(value):
            raise serializers.ValidationError("a tag is 1-64 characters from A-Z a-z 0-9 . _ : / = + -")
        return value


class SourceUrlField(StrictCharField):
    """A URL with a scheme (`https://…`, `file:///…`, `hf:org/repo`, `s3://…`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 2000)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value and (not urlsplit(value).scheme or any(char.isspace() for char in value)):
            raise serializers.ValidationError("must be a URL with a scheme, such as https://, file:// or hf:")
        return value


class Base64Field(StrictCharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_SIGNATURE_CHARS)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise serializers.ValidationError("must be base64") from exc
        return value


class StrictChoiceField(serializers.ChoiceField):
    """A choice that must be a JSON string with exactly one of the values (no case folding)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class StrictDecimalField(serializers.DecimalField):
    """A decimal that must be a JSON number; rendered as a JSON number too."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("coerce_to_string", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)
