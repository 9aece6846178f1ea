"""The id is exactly sha256 of the canonical JSON of the document after defaults (SPEC §5)."""

from __future__ import annotations

import hashlib

import pytest


def expected_id(canonical: str) -> str:
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@pytest.mark.django_db
def test_it_hashes_the_canonical_document_with_defaults(bob):
    # given a document with nested keys out of order, and no tags, parent or metadata
    body = {"kind": "plan", "content": {"steps": [2, 1], "b": {"z": 1, "a": None}}}
    # keys sorted at every level, no spaces, defaults filled in
    canonical = '{"content":{"b":{"a":null,"z":1},"steps":[2,1]},"kind":"plan","metadata":{},"parent":null,"tags":[]}'

    # when
    response = bob.post("/v2/artifacts", body)

    # then
    assert response.status_code == 201
    answer = response.json()
    assert answer["id"] == expected_id(canonical)
    assert answer["digest"] == answer["id"]


@pytest.mark.django_db
def test_it_keeps_non_ascii_unescaped_and_sorts_tags(bob):
    body = {
        "kind": "summary",
        "content": {"text": "Grüße, 世界 🚀"},
        "tags": ["zeta", "Alpha", "ä"],
        "parent": "sha256:parent",
        "metadata": {"lang": "de"},
    }
    canonical = (
        '{"content":{"text":"Grüße, 世界 🚀"},"kind":"summary","metadata":{"lang":"de"},'
        '"parent":"sha256:parent","tags":["Alpha","zeta","ä"]}'
    )

    response = bob.post("/v2/artifacts", body)

    assert response.status_code == 201
    assert response.json()["id"] == expected_id(canonical)
    assert response.json()["tags"] == ["Alpha", "zeta", "ä"]


@pytest.mark.django_db
def test_it_gives_the_same_id_whatever_the_tag_order(bob):
    first = bob.post("/v2/artifacts", {"kind": "other", "content": {}, "tags": ["b", "a"]}).json()
    second = bob.post("/v2/artifacts", {"kind": "other", "content": {}, "tags": ["a", "b"]}).json()

    assert first["id"] == second["id"]


@pytest.mark.django_db
def test_it_treats_explicit_defaults_like_absent_ones(bob):
    bare = bob.post("/v2/artifacts", {"kind": "diff", "content": {"x": 1}}).json()
    explicit = bob.post(
        "/v2/artifacts", {"kind": "diff", "content": {"x": 1}, "tags": [], "parent": None, "metadata": {}}
    ).json()

    assert bare["id"] == explicit["id"]


@pytest.mark.django_db
def test_it_does_not_trim_whitespace_in_tags(bob):
    padded = bob.post("/v2/artifacts", {"kind": "other", "content": {}, "tags": [" a "]}).json()

    assert padded["tags"] == [" a "]
    assert padded["id"] == expected_id('{"content":{},"kind":"other","metadata":{},"parent":null,"tags":[" a "]}')
