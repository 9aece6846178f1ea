"""JSON body parsing with a size limit and strict JSON (no NaN/Infinity)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from orchestrator.api.errors import ApiError


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class LimitedJSONParser(JSONParser):
    """Reads at most ORCHD_MAX_REQUEST_BYTES, then parses the body as one JSON object.

    Bodies are bounded by reading, not by trusting Content-Length, so a chunked
    upload cannot grow without limit either.
    """

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = settings.ORCHD_MAX_REQUEST_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"The request body is larger than {limit} bytes.")
        return json_object(raw)


def json_object(raw: bytes) -> dict[str, Any]:
    """The body as one strict JSON object (UTF-8, no NaN/Infinity), or ParseError."""
    if not raw:
        raise ParseError("the body is empty")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ParseError(str(exc)) from exc
    if not isinstance(data, dict):
        raise ParseError("the body must be a JSON object")
    if b"\\u" in raw:  # only an escape can spell a lone surrogate: raw UTF-8 cannot hold one
        _refuse_lone_surrogates(data)
    return data


def _refuse_lone_surrogates(data: dict[str, Any]) -> None:
    """A string escaping half a surrogate pair (`"\\ud800"`) is JSON, but not text anything can store or send.

    String fields refused it already (as DRF's CharField does), but fields taking any JSON
    stored it (an artifact's content, a GPU's `device_id`), and reading it back failed with
    a 500; a body holding one is refused here, for every endpoint, where other bad JSON is.
    """
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParseError("strings must be Unicode text: the body escapes a lone surrogate (\\ud800-\\udfff)") from exc
    except RecursionError as exc:
        raise ParseError(str(exc)) from exc
