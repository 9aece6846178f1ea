"""Verifying a model file against its catalog digest and signatures.

`request_verification` records a run and queues the job after commit;
`run_verification` (the job's body) hashes the file outside any transaction,
then records the outcome with compare-and-swap updates: the run is finished
exactly once however often the job is delivered, and the entry takes the
outcome only if this run is still the one it is waiting for.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from catalog.models import CatalogModel, VerificationRun, VerificationStatus
from catalog.services.files import ModelFileError, sha256_file
from catalog.services.signatures import check_signatures, trusted_keys
from catalog.types import Signature
from nodes.models import NodeStatus
from orchestrator.metrics import catalog_verifications_total
from pools.models import Pool

logger = logging.getLogger("catalog")

NO_ENGINE = "none"
_METRIC_RESULT = {
    VerificationStatus.PASSED: "pass",
    VerificationStatus.FAILED: "fail",
    VerificationStatus.WARNING: "warn",
}


@dataclass(frozen=True)
class Outcome:
    status: str
    reason: str
    computed_digest: str = ""
    # None: the signatures were not checked, so the entry's flags stay as they are.
    signatures: list[Signature] | None = None


def request_verification(model: CatalogModel) -> VerificationRun:
    """Mark the entry pending and queue a job whose id is the returned run's id."""
    with transaction.atomic():
        run = VerificationRun.objects.create(model=model, expected_digest=model.digest)
        CatalogModel.objects.filter(pk=model.pk).update(
            verification_status=VerificationStatus.PENDING,
            verification_reason="",
            verification_job_id=run.id,
            updated_at=timezone.now(),
        )
        # After commit, so the worker never looks for a run that isn't visible yet.
        transaction.on_commit(partial(_enqueue, run.id))
    model.refresh_from_db()
    logger.info("catalog.verification_requested", extra={"model_id": model.pk, "job_id": str(run.id)})
    return run


def _enqueue(run_id: uuid.UUID) -> None:
    from catalog.jobs import verify_model  # the job module imports this one

    try:
        verify_model.apply_async(args=(str(run_id),), task_id=str(run_id))
    except OperationalError:
        # The broker is unreachable: say so on the entry rather than leave it pending forever.
        logger.exception("catalog.verification_enqueue_failed", extra={"job_id": str(run_id)})
        run = VerificationRun.objects.filter(pk=run_id).first()
        if run is not None:
            _finish(run, Outcome(VerificationStatus.FAILED, "queue_unavailable"))


def run_verification(run_id: str | uuid.UUID) -> VerificationRun | None:
    """Hash the file, check signatures, record the outcome; None if the run no longer exists."""
    run = VerificationRun.objects.select_related("model").filter(pk=run_id).first()
    if run is None or run.is_finished:
        return run
    _finish(run, evaluate(run.model))
    run.refresh_from_db()
    return run


def _finish(run: VerificationRun, outcome: Outcome) -> None:
    """Record the outcome; count and log it only if this call was the one that finished the run."""
    if not _record(run, outcome):
        return
    catalog_verifications_total.labels(
        result=_METRIC_RESULT[VerificationStatus(outcome.status)],
        reason=outcome.reason,
        engine=engine_serving(run.model_id),
    ).inc()
    logger.info(
        "catalog.verification_finished",
        extra={"model_id": run.model_id, "job_id": str(run.id), "status": outcome.status, "reason": outcome.reason},
    )


def evaluate(model: CatalogModel) -> Outcome:
    """The verdict for the entry as it is now (reads the file; no database writes).

    Signatures are over the digest string's UTF-8 bytes: the catalog digest
    when there is one, else the digest just computed.
    """
    expected = model.digest
    try:
        computed = sha256_file(model_file_path(model))
    except ModelFileError as exc:
        return Outcome(VerificationStatus.FAILED, exc.reason, signatures=_signed(model, expected))
    signatures = _signed(model, expected or computed)
    if expected and computed != expected:
        return Outcome(VerificationStatus.FAILED, "digest_mismatch", computed, signatures)
    if model.policy["require_signature"]:
        if not signatures:
            return Outcome(VerificationStatus.FAILED, "signature_missing", computed, signatures)
        if not any(item["verified"] for item in signatures):
            return Outcome(VerificationStatus.FAILED, "signature_invalid", computed, signatures)
    if not expected:
        return Outcome(VerificationStatus.WARNING, "no_expected_digest", computed, signatures)
    return Outcome(VerificationStatus.PASSED, "digest_match", computed, signatures)


def model_file_path(model: CatalogModel) -> Path:
    """The file to hash: a `file://` source_url, else `ORCHD_MODELS_DIR / id`.

    Either way it must resolve (symlinks followed) inside ORCHD_MODELS_DIR, so
    neither an id nor a source_url can make the server read other files.
    """
    root = Path(settings.ORCHD_MODELS_DIR).resolve()
    parts = urlsplit(model.source_url)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise ModelFileError("file_not_found")
        candidate = Path(unquote(parts.path))
    else:
        candidate = root / model.id
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise ModelFileError("path_outside_models_dir")
    return resolved


def engine_serving(model_id: str) -> str:
    """The engine of a pool serving the model (pools on online nodes first), or `none`."""
    rows = Pool.objects.order_by("id").values_list("engine", "model_refs", "node__status")
    serving = [(status != NodeStatus.ONLINE, engine) for engine, refs, status in rows if model_id in (refs or [])]
    return min(serving)[1] if serving else NO_ENGINE


def _signed(model: CatalogModel, digest: str) -> list[Signature]:
    signatures = model.signature_list
    if not signatures:
        return []
    return check_signatures(signatures, digest, trusted_keys())


def _record(run: VerificationRun, outcome: Outcome) -> bool:
    """Finish the run once; update the entry only if it still waits for this run."""
    now = timezone.now()
    with transaction.atomic():
        finished = (
            VerificationRun.objects.unfinished()
            .filter(pk=run.pk)
            .update(
                status=outcome.status, reason=outcome.reason, computed_digest=outcome.computed_digest, finished_at=now
            )
        )
        if not finished:
            return False
        passed = outcome.status == VerificationStatus.PASSED
        checked = {} if outcome.signatures is None else {"signatures": outcome.signatures}
        CatalogModel.objects.filter(pk=run.model_id, verification_job_id=run.pk).update(
            verification_status=outcome.status,
            verification_reason=outcome.reason,
            verification_checked_at=now,
            last_verified_at=now if passed else F("last_verified_at"),
            updated_at=now,
            **checked,
        )
    return True
