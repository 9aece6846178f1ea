"""The model catalog: what clients may ask for, how far it is trusted, and its history.

`CatalogModel` is one entry (SPEC §7). Operator-owned fields are written by
`catalog.services` from a validated `ModelSpec`; the verification fields are
machine-written by the verification job, always with compare-and-swap
updates keyed on `verification_job_id` so a stale job never overwrites a
newer request's outcome.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models

from catalog.types import Manifest, Sbom, Signature, TrustPolicy, default_trust_policy
from orchestrator.ids import MAX_ID_LENGTH, model_id_error

ED25519 = "ed25519"
ED25519_PUBLIC_KEY_BYTES = 32


class ModelState(models.TextChoices):
    # Capitalised, unlike our other enums: SPEC §7 fixes these exact values and
    # the `model_state{state}` metric label exposes them to dashboards.
    ACTIVE = "Active", "Active"
    RETIRED = "Retired", "Retired"


class VerificationStatus(models.TextChoices):
    UNVERIFIED = "unverified", "unverified"
    PENDING = "pending", "pending"
    PASSED = "passed", "passed"
    FAILED = "failed", "failed"
    WARNING = "warning", "warning"


class TrustMode(models.TextChoices):
    STRICT = "strict", "strict"
    PERMISSIVE = "permissive", "permissive"


def validate_model_id(value: str) -> None:
    error = model_id_error(value)
    if error:
        raise ValidationError(f"The model id {error}.")


def validate_ed25519_public_key(value: str) -> None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError("The public key must be base64.") from exc
    if len(raw) != ED25519_PUBLIC_KEY_BYTES:
        raise ValidationError(f"An Ed25519 public key is {ED25519_PUBLIC_KEY_BYTES} raw bytes.")


class CatalogModelQuerySet(models.QuerySet["CatalogModel"]):
    def active(self) -> CatalogModelQuerySet:
        return self.filter(state=ModelState.ACTIVE)

    def retired(self) -> CatalogModelQuerySet:
        return self.filter(state=ModelState.RETIRED)

    def in_state(self, state: str) -> CatalogModelQuerySet:
        return self.filter(state=state)

    def tagged(self, tag: str) -> CatalogModelQuerySet:
        # An exact, indexed match on the tag table: the same SQL on SQLite and
        # PostgreSQL (JSON `contains` is not available on SQLite).
        return self.filter(tag_rows__name=tag)

    def for_listing(self) -> CatalogModelQuerySet:
        return self.order_by("id")


class CatalogModel(models.Model):
    """One model clients may name in `model_ref`, with its trust policy and verification state.

    `tags` (JSON, ordered as the operator wrote them) is what the API shows;
    `ModelTag` rows mirror it for filtering, written by the same service call.
    """

    id = models.CharField(primary_key=True, max_length=MAX_ID_LENGTH, validators=[validate_model_id])
    digest = models.CharField(max_length=71, blank=True, default="", help_text="sha256:<64 lowercase hex>")
    source_url = models.CharField(max_length=2000, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    manifests = models.JSONField(default=list, blank=True)
    signatures = models.JSONField(default=list, blank=True)
    sbom = models.JSONField(null=True, blank=True)
    trust_policy = models.JSONField(default=default_trust_policy, blank=True)
    state = models.CharField(max_length=16, choices=ModelState.choices, default=ModelState.ACTIVE)
    ctx_max = models.PositiveIntegerField(null=True, blank=True)
    cost_per_1k_tokens = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))
    # Running tasks of a retired model are canceled at this moment (by the data plane).
    retire_deadline_at = models.DateTimeField(null=True, blank=True)

    verification_status = models.CharField(
        max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.UNVERIFIED
    )
    verification_checked_at = models.DateTimeField(null=True, blank=True)
    verification_reason = models.CharField(max_length=64, blank=True, default="")
    # The run whose outcome may still be written here; cleared when the entry's
    # identity (digest, source, signatures) changes so older runs are ignored.
    verification_job_id = models.UUIDField(null=True, blank=True)
    last_verified_at = models.DateTimeField(null=True, blank=True, help_text="when verification last passed")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CatalogModelQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = "catalog model"
        # Operator actions in the console, granted to the `operators` group (console migration).
        permissions = [
            ("verify_model", "Can request verification of catalog models"),
            ("retire_model", "Can retire and activate catalog models"),
        ]
        indexes = [
            models.Index(fields=["state"], name="catalog_model_state"),
            # Read by the data plane's job that cancels tasks of retired models.
            models.Index(fields=["retire_deadline_at"], name="catalog_retire_deadline"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_retired(self) -> bool:
        return self.state == ModelState.RETIRED

    @property
    def last_verified_ms(self) -> int | None:
        return _epoch_ms(self.last_verified_at)

    @property
    def policy(self) -> TrustPolicy:
        """The trust policy with defaults filled in for keys an older row may lack."""
        return {**default_trust_policy(), **(self.trust_policy or {})}

    @property
    def signature_list(self) -> list[Signature]:
        return list(self.signatures or [])

    @property
    def manifest_list(self) -> list[Manifest]:
        return list(self.manifests or [])

    @property
    def sbom_ref(self) -> Sbom | None:
        return self.sbom if self.sbom else None


class ModelTag(models.Model):
    """One tag of one model: the filterable mirror of `CatalogModel.tags`.

    A row per tag rather than JSON `contains` (not supported on SQLite) or a
    delimited text column (SQLite's LIKE ignores case and `%`/`_` need
    escaping): `?tag=` becomes an exact, indexed equality on both backends.
    """

    model = models.ForeignKey(CatalogModel, on_delete=models.CASCADE, related_name="tag_rows")
    name = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="catalog_tag_unique")]
        indexes = [models.Index(fields=["name"], name="catalog_tag_name")]

    def __str__(self) -> str:
        return f"{self.model_id}:{self.name}"


class VerificationRunQuerySet(models.QuerySet["VerificationRun"]):
    def unfinished(self) -> VerificationRunQuerySet:
        return self.filter(finished_at__isnull=True)

    def newest_first(self) -> VerificationRunQuerySet:
        return self.order_by("-created_at")


class VerificationRun(models.Model):
    """One verification request and its outcome; its id is the job id clients get back."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(CatalogModel, on_delete=models.CASCADE, related_name="verification_runs")
    status = models.CharField(max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.PENDING)
    reason = models.CharField(max_length=64, blank=True, default="")
    expected_digest = models.CharField(max_length=71, blank=True, default="")
    computed_digest = models.CharField(max_length=71, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = VerificationRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["model", "-created_at"], name="catalog_run_model_created")]

    def __str__(self) -> str:
        return f"{self.model_id} {self.status} ({self.id})"

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None


class SigningKeyQuerySet(models.QuerySet["SigningKey"]):
    def active(self) -> SigningKeyQuerySet:
        return self.filter(active=True)


class SigningKey(models.Model):
    """A public key operators trust to sign model digests (checked when a policy requires signatures)."""

    signer = models.CharField(max_length=128, unique=True)
    algo = models.CharField(max_length=16, choices=[(ED25519, "Ed25519")], default=ED25519)
    public_key = models.CharField(
        max_length=64, validators=[validate_ed25519_public_key], help_text="base64 of the 32 raw key bytes"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SigningKeyQuerySet.as_manager()

    class Meta:
        ordering = ["signer"]

    def __str__(self) -> str:
        return f"{self.signer} ({self.algo})"


def _epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)
