"""`store_artifact()` is a typed service the data plane calls directly (transcripts)."""

from __future__ import annotations

import hashlib

import pytest

from orchestrator.artifacts.documents import build_document
from orchestrator.artifacts.services import InvalidDocument, canonical_digest, load_document, store_artifact


def test_it_computes_the_digest_of_a_known_document():
    document = build_document("transcript", {"events": []}, tags=["task:t1", "sse"], metadata={"é": 1})
    canonical = (
        '{"content":{"events":[]},"kind":"transcript","metadata":{"é":1},"parent":null,"tags":["sse","task:t1"]}'
    )

    assert canonical_digest(document) == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.django_db
def test_it_stores_a_transcript_with_tags_and_metadata():
    stored = store_artifact(
        "transcript",
        {"events": [{"event": "token", "data": {"t": "hi"}}]},
        tags=("task:t1", "session:s1", "sse"),
        metadata={"engine": "llamacpp", "tokens_out": 1},
    )

    assert stored.created is True
    assert stored.artifact.tags == ["session:s1", "sse", "task:t1"]
    assert load_document(stored.artifact) == {
        "kind": "transcript",
        "content": {"events": [{"event": "token", "data": {"t": "hi"}}]},
        "tags": ["session:s1", "sse", "task:t1"],
        "parent": None,
        "metadata": {"engine": "llamacpp", "tokens_out": 1},
    }


@pytest.mark.django_db
def test_it_refuses_an_unknown_kind():
    with pytest.raises(InvalidDocument) as raised:
        store_artifact("poem", {})

    assert raised.value.field == "kind"


@pytest.mark.django_db
def test_it_refuses_values_that_are_not_json():
    with pytest.raises(ValueError, match="Out of range float"):
        store_artifact("other", {"x": float("nan")})
