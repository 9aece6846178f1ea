"""POST /v2/catalog/models/{id}/verify: 202 with a job id, the job runs after commit."""

from __future__ import annotations

import uuid

from kombu.exceptions import OperationalError

from catalog.models import CatalogModel, VerificationRun, VerificationStatus
from catalog.services import request_verification
from tests.catalog.conftest import digest_of
from tests.conftest import assert_envelope


def test_it_accepts_a_verification_and_answers_with_the_job_id(alice, make_model, django_capture_on_commit_callbacks):
    make_model("m")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = alice.post("/v2/catalog/models/m/verify")

    assert response.status_code == 202
    body = response.json()
    assert body["id"] == "m"
    assert body["verification"] == {"status": "pending"}
    run = VerificationRun.objects.get(pk=uuid.UUID(body["job_id"]))
    assert run.status == VerificationStatus.PENDING
    assert CatalogModel.objects.get(pk="m").verification_status == VerificationStatus.PENDING
    assert len(callbacks) == 1, "the job is queued after commit"


def test_it_queues_the_job_only_after_commit(make_model, django_capture_on_commit_callbacks, monkeypatch):
    # given
    queued: list[dict[str, object]] = []
    monkeypatch.setattr("catalog.jobs.verify_model.apply_async", lambda **kwargs: queued.append(kwargs))
    model = make_model("m")

    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = request_verification(model)

    # then nothing was sent before commit, and the job id is the run id
    assert queued == []
    callbacks[0]()
    assert queued == [{"args": (str(run.id),), "task_id": str(run.id)}]


def test_it_runs_the_job_end_to_end_with_eager_celery(
    alice, make_model, model_file, settings, django_capture_on_commit_callbacks
):
    # given
    settings.CELERY_TASK_ALWAYS_EAGER = True
    model_file("m", b"weights")
    make_model("m", digest=digest_of(b"weights"))

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/v2/catalog/models/m/verify")

    # then the answer still says pending; the entry shows the outcome
    assert response.json()["verification"] == {"status": "pending"}
    entry = alice.get("/v2/catalog/models/m").json()
    assert entry["verification"]["status"] == "passed"
    assert entry["verification"]["reason"] == "digest_match"
    assert entry["verification"]["checked_at"].endswith("Z")
    assert isinstance(entry["last_verified_ms"], int)
    run = VerificationRun.objects.get(pk=response.json()["job_id"])
    assert run.status == VerificationStatus.PASSED
    assert run.computed_digest == digest_of(b"weights")


def test_it_answers_404_for_an_unknown_model(alice):
    assert_envelope(alice.post("/v2/catalog/models/nope/verify"), 404, "NOT_FOUND")


def test_it_verifies_a_model_whose_id_has_slashes(alice, make_model, django_capture_on_commit_callbacks):
    make_model("hf:org/repo/file.gguf")

    with django_capture_on_commit_callbacks(execute=False):
        response = alice.post("/v2/catalog/models/hf:org/repo/file.gguf/verify")

    assert response.status_code == 202
    assert response.json()["id"] == "hf:org/repo/file.gguf"


def test_it_fails_the_run_when_the_broker_is_unreachable(
    alice, make_model, monkeypatch, django_capture_on_commit_callbacks
):
    # given a broker that refuses connections
    def refuse(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("catalog.jobs.verify_model.apply_async", refuse)
    signature = {"signer": "s", "algo": "ed25519", "value": "AAAA", "verified": False, "timestamp_ms": None}
    make_model("m", signatures=[signature])

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/v2/catalog/models/m/verify")

    # then the client got its job id, and the entry says why nothing will happen
    assert response.status_code == 202
    run = VerificationRun.objects.get(pk=response.json()["job_id"])
    assert (run.status, run.reason) == (VerificationStatus.FAILED, "queue_unavailable")
    entry = CatalogModel.objects.get(pk="m")
    assert entry.verification_reason == "queue_unavailable"
    assert entry.signatures == [signature]
