"""The admin shows artifacts read-only: list, pretty document, readable transcripts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orchestrator.artifacts.models import Artifact
from orchestrator.artifacts.services import store_artifact

TRANSCRIPT = {
    "events": [
        {"event": "started", "data": {"pool_id": "pool-a"}},
        {"event": "token", "data": {"i": 0, "t": "Hello"}},
        {"event": "token", "data": {"i": 1, "t": ", <world>"}},
        {"event": "metrics", "data": {"tokens_out": 2}},
        {"event": "end", "data": {"outcome": "completed"}},
    ]
}


def change_url(artifact: Artifact) -> str:
    return reverse("admin:artifacts_artifact_change", args=[artifact.pk])


@pytest.mark.django_db
def test_it_lists_artifacts_with_short_ids_and_tags(admin_client):
    artifact = store_artifact("plan", {"a": 1}, tags=["t-one", "t-two"]).artifact

    response = admin_client.get(reverse("admin:artifacts_artifact_changelist"))

    assert response.status_code == 200
    page = response.content.decode()
    assert artifact.short_id in page
    assert "t-one, t-two" in page


@pytest.mark.django_db
def test_it_searches_by_tag_and_filters_by_kind(admin_client):
    store_artifact("plan", {"a": 1}, tags=["needle"])
    store_artifact("summary", {"a": 2}, tags=["hay"])
    url = reverse("admin:artifacts_artifact_changelist")

    searched = admin_client.get(url, {"q": "needle"})
    filtered = admin_client.get(url, {"kind__exact": "summary"})

    assert list(searched.context["cl"].result_list.values_list("kind", flat=True)) == ["plan"]
    assert list(filtered.context["cl"].result_list.values_list("kind", flat=True)) == ["summary"]


@pytest.mark.django_db
def test_it_shows_the_document_pretty_printed_and_escaped(admin_client):
    artifact = store_artifact("plan", {"html": "<script>x</script>", "list": [1, 2]}).artifact

    page = admin_client.get(change_url(artifact)).content.decode()

    assert "&quot;list&quot;: [\n      1," in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<script>x</script>" not in page


@pytest.mark.django_db
def test_it_renders_a_transcript_as_text_and_events(admin_client):
    artifact = store_artifact("transcript", TRANSCRIPT, tags=["sse"]).artifact

    page = admin_client.get(change_url(artifact)).content.decode()

    assert "Hello, &lt;world&gt;" in page
    assert "Other events (3)" in page
    assert "<td>started</td>" in page
    assert "<td>end</td>" in page


@pytest.mark.django_db
def test_it_tolerates_a_malformed_transcript(admin_client):
    artifact = store_artifact("transcript", {"events": [1, {"event": "token", "data": "x"}]}).artifact

    response = admin_client.get(change_url(artifact))

    assert response.status_code == 200


@pytest.mark.django_db
def test_it_shows_contents_from_the_file_store(admin_client, settings):
    settings.ORCHD_ARTIFACT_INLINE_MAX_BYTES = 8
    artifact = store_artifact("logs", {"line": "from the file store"}).artifact

    page = admin_client.get(change_url(artifact)).content.decode()

    assert "from the file store" in page
    assert artifact.content_name in page


@pytest.mark.django_db
def test_it_is_read_only(admin_client):
    artifact = store_artifact("plan", {"a": 1}).artifact

    add = admin_client.get(reverse("admin:artifacts_artifact_add"))
    change = admin_client.post(change_url(artifact), {"kind": "summary"})

    assert add.status_code == 403
    assert change.status_code == 403
    assert Artifact.objects.get().kind == "plan"


@pytest.mark.django_db(transaction=True)
def test_it_deletes_the_file_with_the_artifact(admin_client, settings, artifacts_dir):
    settings.ORCHD_ARTIFACT_INLINE_MAX_BYTES = 8
    artifact = store_artifact("logs", {"line": "goes away"}).artifact
    stored_file = artifacts_dir / artifact.content_name
    assert stored_file.exists()

    admin_client.post(reverse("admin:artifacts_artifact_delete", args=[artifact.pk]), {"post": "yes"})

    assert not Artifact.objects.exists()
    assert not stored_file.exists()
