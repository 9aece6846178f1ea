"""Typed shapes that cross the catalog's boundaries (API, admin, services, jobs).

The JSON columns of `CatalogModel` hold exactly these shapes; they are
validated once at the edge (the API serializers, which the admin form reuses)
and trusted from then on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypedDict


class Manifest(TypedDict):
    digest: str
    size_bytes: int


class Signature(TypedDict):
    """An Ed25519 signature over the model's digest string; `verified` is machine-written."""

    signer: str
    algo: str
    value: str
    verified: bool
    timestamp_ms: int | None


class Sbom(TypedDict):
    uri: str
    digest: str


class TrustPolicy(TypedDict):
    mode: str
    allowed_registries: list[str]
    require_signature: bool
    require_sbom: bool


def default_trust_policy() -> TrustPolicy:
    """Permissive, no registry restriction, nothing required (SPEC §7 defaults)."""
    return {"mode": "permissive", "allowed_registries": [], "require_signature": False, "require_sbom": False}


@dataclass(frozen=True)
class ModelSpec:
    """What an operator says about a model: every field a create or replace writes.

    `state` None means "keep the current state" on replace (Active on create),
    so a PUT that omits it can't silently un-retire a model.
    """

    id: str
    digest: str = ""
    source_url: str = ""
    tags: list[str] = field(default_factory=list)
    manifests: list[Manifest] = field(default_factory=list)
    signatures: list[Signature] = field(default_factory=list)
    sbom: Sbom | None = None
    trust_policy: TrustPolicy = field(default_factory=default_trust_policy)
    state: str | None = None
    ctx_max: int | None = None
    cost_per_1k_tokens: Decimal = Decimal(0)


class ModelAvailability(TypedDict):
    model_id: str
    nodes: list[str]
    pools: list[str]
    ready_pools: int
    total_slots: int
    free_slots: int


class Availability(TypedDict):
    models: list[ModelAvailability]
    total_models: int
    replicated_models: list[str]
    single_node_models: list[str]
