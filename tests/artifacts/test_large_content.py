"""Contents over ORCHD_ARTIFACT_INLINE_MAX_BYTES go to the file store and read back identically."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.core.files.storage import FileSystemStorage

from orchestrator.artifacts.models import Artifact
from orchestrator.artifacts.services import load_document, store_artifact


def big_content() -> dict[str, object]:
    # Non-ASCII on purpose: the limit is on UTF-8 bytes, not characters.
    return {"text": "ü" * (600 * 1024), "numbers": list(range(1000)), "nested": {"ok": True}}


@pytest.mark.django_db
def test_it_stores_large_contents_in_the_file_store(bob, artifacts_dir):
    content = big_content()

    response = bob.post("/v2/artifacts", {"kind": "logs", "content": content, "tags": ["big"]})

    assert response.status_code == 201
    artifact = Artifact.objects.get(pk=response.json()["id"])
    assert artifact.content_json is None
    assert artifact.content_name
    assert artifact.size_bytes > 1024 * 1024
    stored_file = artifacts_dir / artifact.content_name
    assert json.loads(stored_file.read_bytes()) == content


@pytest.mark.django_db
def test_it_reads_large_contents_back_identically(bob):
    content = big_content()
    artifact_id = bob.post("/v2/artifacts", {"kind": "logs", "content": content}).json()["id"]

    response = bob.get(f"/v2/artifacts/{artifact_id}")

    assert response.status_code == 200
    assert response.json()["content"] == content
    assert response.json()["id"] == artifact_id


@pytest.mark.django_db
def test_it_keeps_small_contents_in_the_database(artifacts_dir):
    artifact = store_artifact("plan", {"step": 1}).artifact

    assert artifact.content_name == ""
    assert artifact.content_json == '{"step":1}'
    assert not artifacts_dir.exists() or not any(artifacts_dir.rglob("*.json"))


@pytest.mark.django_db
def test_it_measures_the_limit_on_the_canonical_json(settings):
    settings.ORCHD_ARTIFACT_INLINE_MAX_BYTES = len(b'{"a":"xx"}')

    at_limit = store_artifact("other", {"a": "xx"}).artifact
    over_limit = store_artifact("other", {"a": "xxx"}).artifact

    assert at_limit.content_name == ""
    assert over_limit.content_name != ""


@pytest.mark.django_db
def test_it_reuses_a_complete_file_left_by_an_earlier_attempt(settings, artifacts_dir):
    settings.ORCHD_ARTIFACT_INLINE_MAX_BYTES = 8
    first = store_artifact("other", {"text": "some long text"}).artifact
    name = first.content_name
    Artifact.objects.all().delete()  # the row is gone, the file is still there

    again = store_artifact("other", {"text": "some long text"}).artifact

    assert again.content_name == name
    assert len(list(artifacts_dir.rglob("*.json"))) == 1
    assert load_document(again)["content"] == {"text": "some long text"}


@pytest.mark.django_db
def test_it_does_not_trust_a_partial_file(settings, artifacts_dir):
    settings.ORCHD_ARTIFACT_INLINE_MAX_BYTES = 8
    first = store_artifact("other", {"text": "some long text"}).artifact
    (artifacts_dir / first.content_name).write_bytes(b'{"text":"so')  # truncated by a crash
    Artifact.objects.all().delete()

    again = store_artifact("other", {"text": "some long text"}).artifact

    assert again.content_name != first.content_name
    assert load_document(again)["content"] == {"text": "some long text"}


@pytest.mark.django_db
def test_it_removes_its_own_file_when_a_racing_store_won(settings, artifacts_dir):
    settings.ORCHD_ARTIFACT_INLINE_MAX_BYTES = 8
    winner = store_artifact("other", {"text": "raced content"}).artifact
    real_exists = FileSystemStorage.exists
    looked: list[str] = []

    def exists_missing_the_first_time(storage: FileSystemStorage, name: str) -> bool:
        looked.append(name)
        return False if len(looked) == 1 else real_exists(storage, name)

    # the loser looked before the winner's row and file existed, so it writes a second file
    with (
        mock.patch("orchestrator.artifacts.services.find_artifact", return_value=None),
        mock.patch.object(FileSystemStorage, "exists", new=exists_missing_the_first_time),
    ):
        stored = store_artifact("other", {"text": "raced content"})

    assert stored.created is False
    assert [path.name for path in artifacts_dir.rglob("*.json")] == [winner.content_name.split("/")[-1]]
