"""check_trust: the pure verdict admission uses (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from catalog.models import CatalogModel, VerificationStatus
from catalog.services import TrustDecision, check_trust
from catalog.types import default_trust_policy
from tests.catalog.conftest import DIGEST_A

VERIFIED_SIGNATURE = {"signer": "s", "algo": "ed25519", "value": "AAAA", "verified": True, "timestamp_ms": None}
UNVERIFIED_SIGNATURE = {**VERIFIED_SIGNATURE, "verified": False}
SBOM = {"uri": "https://example.com/sbom.json", "digest": DIGEST_A}


def entry(*, model_id: str = "m", policy: dict[str, Any] | None = None, **fields: Any) -> CatalogModel:
    """An unsaved entry: check_trust needs no database."""
    return CatalogModel(id=model_id, trust_policy={**default_trust_policy(), **(policy or {})}, **fields)


CASES = [
    # (description, entry, allowed, reason)
    ("permissive by default", entry(), True, ""),
    ("permissive allows a failed digest", entry(verification_status=VerificationStatus.FAILED), True, ""),
    ("strict refuses unverified", entry(policy={"mode": "strict"}), False, "not_verified"),
    (
        "strict refuses pending",
        entry(policy={"mode": "strict"}, verification_status=VerificationStatus.PENDING),
        False,
        "not_verified",
    ),
    (
        "strict refuses a warning",
        entry(policy={"mode": "strict"}, verification_status=VerificationStatus.WARNING),
        False,
        "not_verified",
    ),
    (
        "strict refuses failed",
        entry(policy={"mode": "strict"}, verification_status=VerificationStatus.FAILED),
        False,
        "not_verified",
    ),
    (
        "strict allows passed",
        entry(policy={"mode": "strict"}, verification_status=VerificationStatus.PASSED),
        True,
        "",
    ),
    ("signature required, none", entry(policy={"require_signature": True}), False, "signature_unverified"),
    (
        "signature required, unverified",
        entry(policy={"require_signature": True}, signatures=[UNVERIFIED_SIGNATURE]),
        False,
        "signature_unverified",
    ),
    (
        "signature required, one verified",
        entry(policy={"require_signature": True}, signatures=[UNVERIFIED_SIGNATURE, VERIFIED_SIGNATURE]),
        True,
        "",
    ),
    ("sbom required, none", entry(policy={"require_sbom": True}), False, "sbom_missing"),
    ("sbom required, present", entry(policy={"require_sbom": True}, sbom=SBOM), True, ""),
    (
        "registry allowed by scheme and host",
        entry(policy={"allowed_registries": ["https://huggingface.co"]}, source_url="https://huggingface.co/a/b"),
        True,
        "",
    ),
    (
        "registry compared case-insensitively, trailing slash ignored",
        entry(policy={"allowed_registries": ["HTTPS://HuggingFace.co/"]}, source_url="https://huggingface.co/a"),
        True,
        "",
    ),
    (
        "registry with another scheme refused",
        entry(policy={"allowed_registries": ["https://huggingface.co"]}, source_url="http://huggingface.co/a"),
        False,
        "registry_not_allowed",
    ),
    (
        "registry with another host refused",
        entry(policy={"allowed_registries": ["https://huggingface.co"]}, source_url="https://evil.example/a"),
        False,
        "registry_not_allowed",
    ),
    (
        "a look-alike host is another host",
        entry(
            policy={"allowed_registries": ["https://huggingface.co"]},
            source_url="https://huggingface.co.evil.example/a",
        ),
        False,
        "registry_not_allowed",
    ),
    (
        "credentials in the url are not part of the host",
        entry(policy={"allowed_registries": ["https://huggingface.co"]}, source_url="https://u:p@huggingface.co/a"),
        True,
        "",
    ),
    (
        "no source and a plain id has no registry",
        entry(policy={"allowed_registries": ["https://huggingface.co"]}),
        False,
        "registry_not_allowed",
    ),
    ("hf: id allowed by hf:", entry(model_id="hf:org/repo", policy={"allowed_registries": ["hf:"]}), True, ""),
    ("hf: id allowed by hf", entry(model_id="hf:org/repo", policy={"allowed_registries": ["hf"]}), True, ""),
    (
        "hf: id refused by a url allow-list",
        entry(model_id="hf:org/repo", policy={"allowed_registries": ["https://huggingface.co"]}),
        False,
        "registry_not_allowed",
    ),
    (
        "hf: source allowed by hf:",
        entry(policy={"allowed_registries": ["hf:"]}, source_url="hf:org/repo/file.gguf"),
        True,
        "",
    ),
    (
        "the source url wins over an hf: id",
        entry(model_id="hf:org/repo", policy={"allowed_registries": ["hf:"]}, source_url="https://evil.example/x"),
        False,
        "registry_not_allowed",
    ),
    (
        "file sources are a registry of their own",
        entry(policy={"allowed_registries": ["file://"]}, source_url="file:///models/m.gguf"),
        True,
        "",
    ),
    (
        "registry is checked before verification",
        entry(policy={"mode": "strict", "allowed_registries": ["hf:"]}, source_url="https://x.example/m"),
        False,
        "registry_not_allowed",
    ),
    (
        "verification is checked before signatures",
        entry(policy={"mode": "strict", "require_signature": True, "require_sbom": True}),
        False,
        "not_verified",
    ),
    (
        "signatures are checked before the sbom",
        entry(policy={"require_signature": True, "require_sbom": True}),
        False,
        "signature_unverified",
    ),
    (
        "everything required and present",
        entry(
            policy={
                "mode": "strict",
                "require_signature": True,
                "require_sbom": True,
                "allowed_registries": ["https://huggingface.co"],
            },
            source_url="https://huggingface.co/org/repo",
            verification_status=VerificationStatus.PASSED,
            signatures=[VERIFIED_SIGNATURE],
            sbom=SBOM,
        ),
        True,
        "",
    ),
]


@pytest.mark.parametrize(("model", "allowed", "reason"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_it_decides_by_the_trust_policy(model, allowed, reason):
    decision = check_trust(model)

    assert decision == TrustDecision(allowed, reason)
    assert decision.message


def test_it_fills_in_missing_policy_keys_with_defaults():
    model = CatalogModel(id="m", trust_policy={"mode": "strict"}, verification_status=VerificationStatus.PASSED)

    assert check_trust(model).allowed


def test_it_needs_no_database(django_assert_num_queries, db):
    with django_assert_num_queries(0):
        check_trust(entry(policy={"mode": "strict", "require_signature": True}))
