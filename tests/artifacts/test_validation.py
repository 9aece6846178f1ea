"""Bad bodies are `400 INVALID_PARAMS` envelopes naming the fields, never a 500."""

from __future__ import annotations

import os

import pytest

from orchestrator.artifacts.models import Artifact
from tests.conftest import assert_envelope


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"content": {}}, "kind"),
        ({"kind": "poem", "content": {}}, "kind"),
        ({"kind": 1, "content": {}}, "kind"),
        ({"kind": ["plan"], "content": {}}, "kind"),
        ({"kind": "plan"}, "content"),
        ({"kind": "plan", "content": None}, "content"),
        ({"kind": "plan", "content": "text"}, "content"),
        ({"kind": "plan", "content": [1, 2]}, "content"),
        ({"kind": "plan", "content": {}, "tags": "a"}, "tags"),
        ({"kind": "plan", "content": {}, "tags": [1]}, "tags"),
        ({"kind": "plan", "content": {}, "tags": [""]}, "tags"),
        ({"kind": "plan", "content": {}, "tags": ["x" * 257]}, "tags"),
        ({"kind": "plan", "content": {}, "tags": [f"t{i}" for i in range(65)]}, "tags"),
        ({"kind": "plan", "content": {}, "tags": ["line\nbreak"]}, "tags"),
        ({"kind": "plan", "content": {}, "tags": {"a": 1}}, "tags"),
        ({"kind": "plan", "content": {}, "parent": 5}, "parent"),
        ({"kind": "plan", "content": {}, "parent": "x" * 129}, "parent"),
        ({"kind": "plan", "content": {}, "parent": "has space"}, "parent"),
        ({"kind": "plan", "content": {}, "metadata": []}, "metadata"),
        ({"kind": "plan", "content": {}, "metadata": "m"}, "metadata"),
        ({"kind": "plan", "content": {"text": "nul\u0000inside"}}, "content"),
        ({"kind": "plan", "content": {}, "metadata": {"k\u0000": 1}}, "metadata"),
    ],
)
def test_it_refuses_invalid_fields(bob, body, field):
    response = bob.post("/v2/artifacts", body)

    envelope = assert_envelope(response, 400, "INVALID_PARAMS")
    assert field in envelope["details"], envelope
    assert Artifact.objects.count() == 0


@pytest.mark.django_db
def test_it_accepts_the_largest_allowed_tags(bob):
    tags = [f"{i:02d}" + "x" * 254 for i in range(64)]

    response = bob.post("/v2/artifacts", {"kind": "plan", "content": {}, "tags": tags})

    assert response.status_code == 201


@pytest.mark.django_db
def test_it_ignores_unknown_fields(bob):
    plain = bob.post("/v2/artifacts", {"kind": "plan", "content": {}}).json()
    extra = bob.post("/v2/artifacts", {"kind": "plan", "content": {}, "colour": "blue"}).json()

    assert extra["id"] == plain["id"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"",
        b"[1, 2]",
        b'"just a string"',
        b'{"kind": "plan", "content": {"x": NaN}}',
        b"\xff\xfe\xfd",
    ],
)
def test_it_refuses_malformed_json(bob, raw):
    response = bob.post("/v2/artifacts", raw=raw)

    assert_envelope(response, 400, "INVALID_PARAMS")


@pytest.mark.django_db
def test_it_refuses_a_megabyte_of_junk(bob):
    junk = os.urandom(1024 * 1024)

    response = bob.post("/v2/artifacts", raw=junk)

    assert_envelope(response, 400, "INVALID_PARAMS")


@pytest.mark.django_db
def test_it_refuses_a_megabyte_of_text_that_is_not_json(bob):
    response = bob.post("/v2/artifacts", raw=b"a" * (1024 * 1024))

    assert_envelope(response, 400, "INVALID_PARAMS")


def nested(depth: int) -> dict[str, object]:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return {"x": value}


@pytest.mark.django_db
def test_it_refuses_contents_nested_too_deeply(bob):
    response = bob.post("/v2/artifacts", {"kind": "plan", "content": nested(200)})

    envelope = assert_envelope(response, 400, "INVALID_PARAMS")
    assert "content" in envelope["details"]


@pytest.mark.django_db
def test_it_accepts_reasonably_nested_contents(bob):
    created = bob.post("/v2/artifacts", {"kind": "plan", "content": nested(100)}).json()

    assert bob.get(f"/v2/artifacts/{created['id']}").json()["content"] == nested(100)


@pytest.mark.django_db
def test_it_refuses_json_nested_deeper_than_the_parser_can_go(bob):
    response = bob.post("/v2/artifacts", raw=b"[" * (1024 * 1024))

    assert_envelope(response, 400, "INVALID_PARAMS")
