"""Posting the same document again returns the same id, 201, and no second row."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import IntegrityError

from orchestrator.artifacts.models import Artifact, ArtifactTag
from orchestrator.artifacts.services import store_artifact

DOCUMENT = {"kind": "trace", "content": {"spans": [1, 2, 3]}, "tags": ["t1", "t2"], "metadata": {"m": 1}}


@pytest.mark.django_db
def test_it_returns_the_same_id_for_the_same_document(bob):
    first = bob.post("/v2/artifacts", DOCUMENT)
    second = bob.post("/v2/artifacts", DOCUMENT)

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert Artifact.objects.count() == 1
    assert ArtifactTag.objects.count() == 2


@pytest.mark.django_db
def test_it_reports_whether_the_service_created_the_row():
    first = store_artifact("trace", {"a": 1})
    second = store_artifact("trace", {"a": 1})

    assert first.created is True
    assert second.created is False
    assert second.artifact.pk == first.artifact.pk


@pytest.mark.django_db
def test_it_returns_the_winner_when_a_racing_insert_got_there_first():
    # given another process stored the same document after our lookup found nothing
    winner = store_artifact("logs", {"line": "x"}).artifact

    # when our INSERT then hits the primary key
    with mock.patch("orchestrator.artifacts.services.find_artifact", return_value=None):
        stored = store_artifact("logs", {"line": "x"})

    # then the winner's row is returned and nothing was duplicated
    assert stored.created is False
    assert stored.artifact.pk == winner.pk
    assert Artifact.objects.count() == 1


@pytest.mark.django_db
def test_it_does_not_swallow_integrity_errors_that_are_not_duplicates():
    with (
        mock.patch("orchestrator.artifacts.services.insert", side_effect=IntegrityError("boom")),
        pytest.raises(IntegrityError),
    ):
        store_artifact("logs", {"line": "y"})
