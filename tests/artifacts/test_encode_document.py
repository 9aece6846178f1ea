"""`encode_document` decides as `check_storable` + `canonical_digest` + `canonical_json` do, on every document.

It checks the canonical text and the containers only, and walks the whole
document only when that cannot rule a problem out; these cases hold it to
the functions it replaces, at the edges of each check.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from decimal import Decimal
from typing import Any

import pytest

from orchestrator.artifacts.documents import (
    MAX_DEPTH,
    InvalidDocument,
    build_document,
    canonical_digest,
    canonical_json,
    check_storable,
    encode_document,
)


def nested(levels: int, inner: Any = 1, container: type = dict) -> dict[str, Any]:
    """`levels` containers, one inside the other, around `inner`: an object outside, `container`s inside."""
    value = inner
    for _ in range(levels - 1):
        value = container({"k": value}) if container in (dict, OrderedDict) else container([value])
    return {"k": value}


def transcript(tokens: int) -> dict[str, Any]:
    events = [{"event": "started", "data": {"queue_position": 0, "pool_id": "p"}}]
    events += [{"event": "token", "data": {"t": f" w{i}", "i": i}} for i in range(tokens)]
    events += [{"event": "end", "data": {"tokens_out": tokens, "finish_reason": "stop", "canceled": False}}]
    return {"events": events}


STORABLE = {
    "empty": {},
    "transcript": transcript(64),
    "unicode": {"text": "Grüße, 世界 🚀", "ключ": ["\u2028", "\x85"]},
    "nul as written text": {"text": "a \\u0000 is not a NUL"},
    "backslashes then u0000": {"text": "\\\\u0000"},
    "brackets inside strings": {"text": "{[{[", "more": "]]}}" * 200},
    "tuples": {"pair": (1, (2, (3,)))},
    "numbers": {"int": 10**30, "float": 1.5, "bool": True, "none": None},
    "the deepest allowed": nested(MAX_DEPTH),
    "the deepest allowed, lists": nested(MAX_DEPTH, container=list),
    "the deepest allowed, a dict subclass": nested(MAX_DEPTH, container=OrderedDict),
    "the deepest allowed, tuples": nested(MAX_DEPTH, container=tuple),
    "wide": {f"k{i}": [i, {"v": i}] for i in range(500)},
}

NOT_STORABLE = {
    "a NUL in a value": ({"text": "nul\u0000inside"}, "content"),
    "a NUL in a key": ({"k\u0000": 1}, "content"),
    "a NUL deep down": (nested(50, inner="x\u0000"), "content"),
    "one level too deep": (nested(MAX_DEPTH + 1), "content"),
    "one level too deep, lists": (nested(MAX_DEPTH + 1, container=list), "content"),
    "one level too deep, a dict subclass": (nested(MAX_DEPTH + 1, container=OrderedDict), "content"),
    "one level too deep, tuples": (nested(MAX_DEPTH + 1, container=tuple), "content"),
    "too deep and a NUL written as text": (nested(MAX_DEPTH + 5, inner="\\u0000"), "content"),
}


def old_way(document: Any) -> tuple[str, bytes, bytes]:
    check_storable(document)
    return canonical_digest(document), canonical_json(document["content"]), canonical_json(document["metadata"])


@pytest.mark.parametrize("content", list(STORABLE.values()), ids=list(STORABLE))
def test_it_encodes_a_storable_content_as_before(content):
    document = build_document("plan", content, tags=["b", "a"], parent="sha256:x", metadata={"m": [1, {"n": 2}]})

    encoded = encode_document(document)

    assert (encoded.digest, encoded.content, encoded.metadata) == old_way(document)


@pytest.mark.parametrize("metadata", list(STORABLE.values()), ids=list(STORABLE))
def test_it_encodes_storable_metadata_as_before(metadata):
    document = build_document("transcript", {"x": 1}, metadata=metadata)

    encoded = encode_document(document)

    assert (encoded.digest, encoded.content, encoded.metadata) == old_way(document)


@pytest.mark.parametrize(("value", "field"), list(NOT_STORABLE.values()), ids=list(NOT_STORABLE))
@pytest.mark.parametrize("member", ["content", "metadata"])
def test_it_refuses_what_check_storable_refuses(value, field, member):
    document = build_document(
        "plan", value if member == "content" else {}, metadata=value if member == "metadata" else {}
    )

    with pytest.raises(InvalidDocument) as expected:
        check_storable(document)
    with pytest.raises(InvalidDocument) as refused:
        encode_document(document)

    assert expected.value.field == member
    assert (refused.value.field, refused.value.message) == (expected.value.field, expected.value.message)


@pytest.mark.parametrize(
    ("tags", "parent"), [(["ok", "n\u0000ul"], None), (["ok"], "sha256:\u0000"), ([nested(MAX_DEPTH + 1)], None)]
)
def test_it_refuses_bad_tags_and_parents(tags, parent):
    document = build_document("plan", {}, tags=tags if all(isinstance(t, str) for t in tags) else None, parent=parent)
    if not all(isinstance(t, str) for t in tags):
        document["tags"] = tags  # past build_document's sort, as a caller could pass it

    with pytest.raises(InvalidDocument) as expected:
        check_storable(document)
    with pytest.raises(InvalidDocument) as refused:
        encode_document(document)

    assert refused.value.field == expected.value.field


def test_a_nul_outranks_a_value_that_is_not_json():
    # check_storable ran first: its refusal, not the encoder's error, is what callers saw
    document = build_document("plan", {"bad": Decimal("1.5"), "text": "nul\u0000"})

    with pytest.raises(InvalidDocument):
        encode_document(document)


@pytest.mark.parametrize(("content", "error"), [({"x": math.nan}, ValueError), ({"x": {1, 2}}, TypeError)])
def test_values_that_are_not_json_fail_as_before(content, error):
    with pytest.raises(error):
        encode_document(build_document("plan", content))


def test_nesting_the_encoder_cannot_follow_is_refused_as_too_deep():
    document = build_document("plan", nested(5000, container=list))

    with pytest.raises(InvalidDocument) as refused:
        encode_document(document)

    assert refused.value.field == "content"
    assert "deeper" in refused.value.message


def outcome(encode: Any, document: Any) -> Any:
    """What a way of encoding gives: its result, or its error's type and words."""
    try:
        return encode(document)
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return type(error), str(error), getattr(error, "field", None)


MIXED_FAILURES = {
    "a lone surrogate": {"content": {"x": "\ud800"}},
    "a lone surrogate, then a set": {"content": {"x": "\ud800"}, "metadata": {"s": {1}}},
    "a lone surrogate, then NaN": {"content": {"x": "\ud800"}, "metadata": {"n": math.nan}},
    "a lone surrogate and a NUL": {"content": {"x": "\ud800", "y": "\x00"}},
    "a set in the kind, then NaN": {"kind": {1}, "metadata": {"n": math.nan}},
    "NaN, then a NUL": {"content": {"n": math.nan}, "metadata": {"k": "\x00"}},
    "too deep for the encoder, then a set": {"content": nested(5000, container=list), "metadata": {"s": {1}}},
}


@pytest.mark.parametrize("members", list(MIXED_FAILURES.values()), ids=list(MIXED_FAILURES))
def test_it_fails_first_where_the_old_functions_failed_first(members):
    document = build_document("plan", {})
    document.update(members)

    assert outcome(encode_document, document) == outcome(old_way, document)


def test_its_refusal_is_not_raised_inside_the_encoders_error():
    with pytest.raises(InvalidDocument) as refused:
        encode_document(build_document("plan", nested(5000, container=list)))

    assert refused.value.__context__ is None
