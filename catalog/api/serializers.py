"""Request and response shapes of the catalog API (SPEC §7)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalog.api.fields import (
    Base64Field,
    DigestField,
    SourceUrlField,
    StrictChoiceField,
    StrictDecimalField,
    TagField,
)
from catalog.models import ED25519, CatalogModel, ModelState, TrustMode, VerificationStatus
from catalog.types import Manifest, ModelSpec, Sbom, Signature, TrustPolicy, default_trust_policy
from orchestrator.api.fields import ModelIdField, StrictBooleanField, StrictCharField, StrictIntegerField

MAX_TAGS = 64
MAX_MANIFESTS = 1000
MAX_SIGNATURES = 32
MAX_REGISTRIES = 64


class ManifestSerializer(serializers.Serializer[Manifest]):
    digest = DigestField()
    size_bytes = StrictIntegerField(min_value=0)


class SignatureInputSerializer(serializers.Serializer[Signature]):
    """A signature as an operator submits it; `verified` is ignored (the job decides)."""

    signer = StrictCharField(max_length=128)
    algo = StrictChoiceField(choices=[ED25519])
    value = Base64Field(help_text="base64 of the raw signature over the digest string's UTF-8 bytes")
    timestamp_ms = StrictIntegerField(min_value=0, required=False, allow_null=True, default=None)


class SignatureSerializer(SignatureInputSerializer):
    verified = serializers.BooleanField(read_only=True)


class SbomSerializer(serializers.Serializer[Sbom]):
    uri = StrictCharField(max_length=2000)
    digest = DigestField()


class TrustPolicySerializer(serializers.Serializer[TrustPolicy]):
    mode = StrictChoiceField(choices=TrustMode.choices, required=False, default=TrustMode.PERMISSIVE)
    allowed_registries = serializers.ListField(
        child=StrictCharField(max_length=255), required=False, default=list, max_length=MAX_REGISTRIES
    )
    require_signature = StrictBooleanField(required=False, default=False)
    require_sbom = StrictBooleanField(required=False, default=False)


class ModelInputSerializer(serializers.Serializer[CatalogModel]):
    """The body of `POST /models` and `PUT /models/{id}`; absent fields take their defaults."""

    id = ModelIdField(required=False)
    digest = DigestField(required=False, allow_blank=True, default="")
    source_url = SourceUrlField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=TagField(), required=False, default=list, max_length=MAX_TAGS)
    manifests = serializers.ListField(
        child=ManifestSerializer(), required=False, default=list, max_length=MAX_MANIFESTS
    )
    signatures = serializers.ListField(
        child=SignatureInputSerializer(), required=False, default=list, max_length=MAX_SIGNATURES
    )
    sbom = SbomSerializer(required=False, allow_null=True, default=None)
    trust_policy = TrustPolicySerializer(required=False)
    state = StrictChoiceField(choices=ModelState.choices, required=False)
    ctx_max = StrictIntegerField(min_value=1, required=False, allow_null=True, default=None)
    cost_per_1k_tokens = StrictDecimalField(
        max_digits=14, decimal_places=6, min_value=Decimal(0), required=False, default=Decimal(0)
    )

    def to_spec(self, model_id: str) -> ModelSpec:
        """The validated body as a `ModelSpec` for the services."""
        data: dict[str, Any] = dict(self.validated_data)
        policy = {**default_trust_policy(), **dict(data.get("trust_policy") or {})}
        return ModelSpec(
            id=model_id,
            digest=data["digest"],
            source_url=data["source_url"],
            tags=list(data["tags"]),
            manifests=[_manifest(item) for item in data["manifests"]],
            signatures=[_signature(item) for item in data["signatures"]],
            sbom=_sbom(data["sbom"]),
            trust_policy=_trust_policy(policy),
            state=data.get("state"),
            ctx_max=data["ctx_max"],
            cost_per_1k_tokens=data["cost_per_1k_tokens"],
        )


def _manifest(item: dict[str, Any]) -> Manifest:
    return {"digest": item["digest"], "size_bytes": item["size_bytes"]}


def _signature(item: dict[str, Any]) -> Signature:
    return {
        "signer": item["signer"],
        "algo": item["algo"],
        "value": item["value"],
        "verified": False,
        "timestamp_ms": item.get("timestamp_ms"),
    }


def _sbom(item: dict[str, Any] | None) -> Sbom | None:
    return None if item is None else {"uri": item["uri"], "digest": item["digest"]}


def _trust_policy(item: dict[str, Any]) -> TrustPolicy:
    return {
        "mode": item["mode"],
        "allowed_registries": list(item["allowed_registries"]),
        "require_signature": item["require_signature"],
        "require_sbom": item["require_sbom"],
    }


class VerificationSerializer(serializers.Serializer[CatalogModel]):
    status = serializers.ChoiceField(choices=VerificationStatus.choices, source="verification_status")
    checked_at = serializers.DateTimeField(source="verification_checked_at", allow_null=True)
    reason = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_reason(self, model: CatalogModel) -> str | None:
        return model.verification_reason or None


class CatalogModelSerializer(serializers.ModelSerializer[CatalogModel]):
    """A catalog entry as every endpoint returns it."""

    tags = serializers.ListField(child=serializers.CharField())
    manifests = ManifestSerializer(many=True)
    signatures = SignatureSerializer(many=True)
    sbom = SbomSerializer(allow_null=True)
    trust_policy = TrustPolicySerializer(source="policy")
    verification = VerificationSerializer(source="*")
    last_verified_ms = serializers.IntegerField(allow_null=True)
    cost_per_1k_tokens = StrictDecimalField(max_digits=14, decimal_places=6)

    class Meta:
        model = CatalogModel
        fields = (
            "id",
            "digest",
            "source_url",
            "tags",
            "manifests",
            "signatures",
            "sbom",
            "trust_policy",
            "state",
            "verification",
            "last_verified_ms",
            "ctx_max",
            "cost_per_1k_tokens",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class ModelListQuerySerializer(serializers.Serializer[Any]):
    # An empty `?state=` or `?tag=` means "no filter", as a cleared form field would send.
    state = serializers.ChoiceField(choices=ModelState.choices, required=False, allow_blank=True)
    tag = serializers.CharField(max_length=64, required=False, allow_blank=True)


class StateChangeSerializer(serializers.Serializer[Any]):
    state = StrictChoiceField(choices=ModelState.choices)
    deadline_ms = StrictIntegerField(
        min_value=1, required=False, allow_null=True, default=None, help_text="cancel running tasks after this long"
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("deadline_ms") is not None and attrs["state"] != ModelState.RETIRED:
            raise serializers.ValidationError({"deadline_ms": ["only applies when retiring a model"]})
        return attrs


class PendingVerificationSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=[VerificationStatus.PENDING])


class VerifyAcceptedSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    verification = PendingVerificationSerializer()
    job_id = serializers.CharField()


class ModelAvailabilitySerializer(serializers.Serializer[Any]):
    model_id = serializers.CharField()
    nodes = serializers.ListField(child=serializers.CharField())
    pools = serializers.ListField(child=serializers.CharField())
    ready_pools = serializers.IntegerField()
    total_slots = serializers.IntegerField()
    free_slots = serializers.IntegerField()


class AvailabilitySerializer(serializers.Serializer[Any]):
    models = ModelAvailabilitySerializer(many=True)
    total_models = serializers.IntegerField()
    replicated_models = serializers.ListField(child=serializers.CharField())
    single_node_models = serializers.ListField(child=serializers.CharField())
