"""Catalog entries: create, replace, delete, and the Active/Retired state."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import CatalogModel, ModelState, ModelTag, VerificationStatus
from catalog.types import ModelSpec, Signature
from orchestrator.api.errors import ApiError, conflict

logger = logging.getLogger("catalog")

# Fields an operator writes; the verification fields are the job's.
OPERATOR_FIELDS = (
    "digest",
    "source_url",
    "tags",
    "manifests",
    "sbom",
    "trust_policy",
    "state",
    "retire_deadline_at",
    "ctx_max",
    "cost_per_1k_tokens",
)
VERIFICATION_FIELDS = (
    "signatures",
    "verification_status",
    "verification_checked_at",
    "verification_reason",
    "verification_job_id",
    "last_verified_at",
)


def create_model(spec: ModelSpec) -> CatalogModel:
    """Add an entry; 409 CONFLICT when the id is taken (also when two creates race)."""
    model = CatalogModel(id=spec.id, state=spec.state or ModelState.ACTIVE)
    _apply(model, spec, keep_signature_flags=False)
    try:
        with transaction.atomic():
            model.save(force_insert=True)
            _store_tags(model)
    except IntegrityError as exc:
        raise conflict(f"Model '{spec.id}' is already in the catalog.") from exc
    logger.info("catalog.model_created", extra={"model_id": model.id})
    return model


def replace_model(model: CatalogModel, spec: ModelSpec) -> CatalogModel:
    """Replace every operator-owned field of an entry with `spec`.

    When what the verification vouched for changes (digest, source or
    signatures), the old outcome no longer applies: verification goes back to
    unverified and any run still in flight is disowned.
    """
    with transaction.atomic():
        current = CatalogModel.objects.select_for_update().get(pk=model.pk)
        reset = _identity_changed(current, spec)
        _apply(current, spec, keep_signature_flags=not reset)
        fields = [*OPERATOR_FIELDS, "updated_at"]
        if reset:
            _reset_verification(current)
            fields += VERIFICATION_FIELDS
        # Only our own columns: a verification job may write the others meanwhile.
        current.save(update_fields=fields)
        _store_tags(current)
    logger.info("catalog.model_replaced", extra={"model_id": current.id, "verification_reset": reset})
    return current


def put_model(spec: ModelSpec) -> tuple[CatalogModel, bool]:
    """Create-or-replace for `PUT /models/{id}`; True when the entry was created."""
    existing = CatalogModel.objects.filter(pk=spec.id).first()
    if existing is not None:
        return replace_model(existing, spec), False
    try:
        return create_model(spec), True
    except ApiError as exc:
        # Another request created it between our read and our insert: replace it instead.
        existing = CatalogModel.objects.filter(pk=spec.id).first()
        if exc.code != "CONFLICT" or existing is None:
            raise
        return replace_model(existing, spec), False


def delete_model(model: CatalogModel) -> bool:
    """Remove the entry and its history; model files are never touched."""
    deleted, _ = CatalogModel.objects.filter(pk=model.pk).delete()
    if deleted:
        logger.info("catalog.model_deleted", extra={"model_id": model.pk})
    return deleted > 0


def set_model_state(model: CatalogModel, state: str, deadline_ms: int | None = None) -> CatalogModel:
    """Move an entry to Active or Retired (compare-and-swap); returns it fresh from the database.

    Retiring stops new admissions at once (admission reads `state`); running
    tasks may finish, or are canceled at `retire_deadline_at` when a deadline
    is given. Activating clears any deadline. Repeating the current state is a
    no-op, except that retiring again with a deadline sets the new deadline.
    """
    if state not in ModelState.values:
        raise ValueError(f"unknown model state {state!r}")
    now = timezone.now()
    deadline = now + timedelta(milliseconds=deadline_ms) if state == ModelState.RETIRED and deadline_ms else None
    changed = (
        CatalogModel.objects.filter(pk=model.pk)
        .exclude(state=state)
        .update(state=state, retire_deadline_at=deadline, updated_at=now)
    )
    if changed:
        logger.info("catalog.model_state_changed", extra={"model_id": model.pk, "state": state})
    elif deadline is not None:
        CatalogModel.objects.filter(pk=model.pk).update(retire_deadline_at=deadline, updated_at=now)
    model.refresh_from_db()
    return model


def _apply(model: CatalogModel, spec: ModelSpec, *, keep_signature_flags: bool) -> None:
    model.digest = spec.digest
    model.source_url = spec.source_url
    model.tags = list(dict.fromkeys(spec.tags))
    model.manifests = list(spec.manifests)
    model.sbom = spec.sbom
    model.trust_policy = spec.trust_policy
    model.ctx_max = spec.ctx_max
    model.cost_per_1k_tokens = spec.cost_per_1k_tokens
    if spec.state is not None and spec.state != model.state:
        model.state = spec.state
        model.retire_deadline_at = None
    if not keep_signature_flags:
        # `verified` is the job's verdict, never the client's claim.
        model.signatures = [{**signature, "verified": False} for signature in spec.signatures]


def _identity_changed(current: CatalogModel, spec: ModelSpec) -> bool:
    return (
        current.digest != spec.digest
        or current.source_url != spec.source_url
        or _signature_identities(current.signature_list) != _signature_identities(spec.signatures)
    )


def _signature_identities(signatures: list[Signature]) -> list[tuple[str, str, str, int | None]]:
    return [(item["signer"], item["algo"], item["value"], item.get("timestamp_ms")) for item in signatures]


def _reset_verification(model: CatalogModel) -> None:
    model.verification_status = VerificationStatus.UNVERIFIED
    model.verification_checked_at = None
    model.verification_reason = ""
    model.verification_job_id = None
    model.last_verified_at = None


def _store_tags(model: CatalogModel) -> None:
    ModelTag.objects.filter(model=model).delete()
    ModelTag.objects.bulk_create(ModelTag(model=model, name=name) for name in model.tags)
