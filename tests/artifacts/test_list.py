"""`GET /v2/artifacts?tag=&kind=`: newest first, paginated, filtered, without contents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from orchestrator.artifacts.services import store_artifact
from tests.conftest import assert_envelope

START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def three_artifacts(db):
    """A plan, then a transcript, then a summary, a second apart (ids in that order)."""
    ids = []
    documents: list[tuple[str, dict[str, object], list[str]]] = [
        ("plan", {"n": 1}, ["shared", "task:1"]),
        ("transcript", {"events": []}, ["sse", "shared", "task:2"]),
        ("summary", {"n": 3}, ["task:3"]),
    ]
    for offset, (kind, content, tags) in enumerate(documents):
        with time_machine.travel(START + timedelta(seconds=offset), tick=False):
            ids.append(store_artifact(kind, content, tags=tags, metadata={"i": offset}).artifact.id)
    return ids


def test_it_lists_newest_first_without_contents(bob, three_artifacts):
    response = bob.get("/v2/artifacts")

    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 3
    assert [item["id"] for item in page["results"]] == list(reversed(three_artifacts))
    newest = page["results"][0]
    assert set(newest) == {"id", "kind", "digest", "created_ms", "tags", "parent", "metadata", "size_bytes"}
    assert newest["digest"] == newest["id"]
    assert newest["created_ms"] == int((START + timedelta(seconds=2)).timestamp() * 1000)
    assert newest["metadata"] == {"i": 2}
    assert newest["size_bytes"] == len(b'{"n":3}')


def test_it_filters_by_kind(bob, three_artifacts):
    page = bob.get("/v2/artifacts?kind=transcript").json()

    assert [item["id"] for item in page["results"]] == [three_artifacts[1]]


def test_it_filters_by_tag(bob, three_artifacts):
    page = bob.get("/v2/artifacts?tag=shared").json()

    assert page["count"] == 2
    assert [item["id"] for item in page["results"]] == [three_artifacts[1], three_artifacts[0]]


def test_it_requires_every_repeated_tag(bob, three_artifacts):
    page = bob.get("/v2/artifacts?tag=shared&tag=sse").json()

    assert [item["id"] for item in page["results"]] == [three_artifacts[1]]


def test_it_combines_tag_and_kind(bob, three_artifacts):
    assert bob.get("/v2/artifacts?tag=shared&kind=plan").json()["count"] == 1
    assert bob.get("/v2/artifacts?tag=task:3&kind=plan").json()["count"] == 0


def test_it_finds_nothing_for_an_unknown_tag(bob, three_artifacts):
    page = bob.get("/v2/artifacts?tag=nope").json()

    assert page == {"count": 0, "next": None, "previous": None, "results": []}


def test_it_paginates_with_limit_and_offset(bob, three_artifacts):
    first = bob.get("/v2/artifacts?limit=2").json()
    second = bob.get("/v2/artifacts?limit=2&offset=2").json()

    assert first["count"] == 3
    assert [item["id"] for item in first["results"]] == [three_artifacts[2], three_artifacts[1]]
    assert first["next"] is not None
    assert first["previous"] is None
    assert [item["id"] for item in second["results"]] == [three_artifacts[0]]
    assert second["next"] is None


def test_it_refuses_an_unknown_kind_filter(bob, three_artifacts):
    body = assert_envelope(bob.get("/v2/artifacts?kind=poem"), 400, "INVALID_PARAMS")

    assert "kind" in body["details"]


def test_it_lists_a_tag_once_even_if_posted_twice(bob):
    bob.post("/v2/artifacts", {"kind": "other", "content": {}, "tags": ["dup", "dup"]})

    page = bob.get("/v2/artifacts?tag=dup").json()

    assert page["count"] == 1
    assert page["results"][0]["tags"] == ["dup", "dup"]


def test_it_lists_in_a_bounded_number_of_queries(bob, three_artifacts, django_assert_max_num_queries):
    # auth lookup + token touch + count + page; no query per artifact
    with django_assert_max_num_queries(5):
        bob.get("/v2/artifacts?tag=shared")
