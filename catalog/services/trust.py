"""Whether a catalog entry's trust policy lets it be served.

`check_trust` is pure — it reads only the entry it is given, no database, no
clock — so admission can call it on every task and tests can run it as a
table. Checks run in a fixed order and the first refusal wins, so a client
always sees the same reason for the same entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from catalog.models import CatalogModel, TrustMode, VerificationStatus

HF_REGISTRY = "hf:"

_MESSAGES = {
    "registry_not_allowed": "The model's source is not in the trust policy's allowed registries.",
    "not_verified": "The trust policy is strict and the model's digest has not passed verification.",
    "signature_unverified": "The trust policy requires a verified signature and the model has none.",
    "sbom_missing": "The trust policy requires an SBOM and the model has none.",
}


@dataclass(frozen=True)
class TrustDecision:
    """The verdict: `reason` is a stable code ("" when allowed), `message` a sentence for clients."""

    allowed: bool
    reason: str = ""

    @property
    def message(self) -> str:
        return _MESSAGES.get(self.reason, "The model is trusted.")


def check_trust(model: CatalogModel) -> TrustDecision:
    """Apply the entry's trust policy: registries, strict verification, signature, SBOM."""
    policy = model.policy
    allowed_registries = {_normalize_registry(entry) for entry in policy["allowed_registries"]}
    registry = registry_of(model)
    if allowed_registries and (registry is None or _normalize_registry(registry) not in allowed_registries):
        return TrustDecision(False, "registry_not_allowed")
    if policy["mode"] == TrustMode.STRICT and model.verification_status != VerificationStatus.PASSED:
        return TrustDecision(False, "not_verified")
    if policy["require_signature"] and not any(item.get("verified") for item in model.signature_list):
        return TrustDecision(False, "signature_unverified")
    if policy["require_sbom"] and model.sbom_ref is None:
        return TrustDecision(False, "sbom_missing")
    return TrustDecision(True)


def registry_of(model: CatalogModel) -> str | None:
    """Where the model comes from: `scheme://host` of its source, `hf:` for Hugging Face refs.

    A model without a source_url is judged by its id (`hf:org/...`); with
    neither, it has no registry and any non-empty allow-list refuses it.
    """
    source = model.source_url.strip()
    if source.lower().startswith(HF_REGISTRY) or (not source and model.id.startswith(HF_REGISTRY)):
        return HF_REGISTRY
    if not source:
        return None
    parts = urlsplit(source)
    if not parts.scheme:
        return None
    host = parts.netloc.rpartition("@")[2].lower()  # credentials are not part of the registry
    return f"{parts.scheme.lower()}://{host}"


def _normalize_registry(entry: str) -> str:
    """Compare registries case-insensitively, ignoring a trailing slash; `hf` means `hf:`."""
    normalized = entry.strip().lower().rstrip("/")
    return HF_REGISTRY if normalized in ("hf", HF_REGISTRY) else normalized
