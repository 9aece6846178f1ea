"""Ed25519 signatures over the digest string, checked against configured signing keys."""

from __future__ import annotations

from catalog.jobs import verify_model
from catalog.models import CatalogModel, SigningKey, VerificationStatus
from catalog.services import request_verification
from catalog.services.signatures import check_signatures, trusted_keys
from tests.catalog.conftest import DIGEST_A, DIGEST_B, digest_of

CONTENT = b"signed weights"
REQUIRED = {"mode": "permissive", "allowed_registries": [], "require_signature": True, "require_sbom": False}


def verify(model: CatalogModel) -> CatalogModel:
    verify_model(str(request_verification(model).id))
    return CatalogModel.objects.get(pk=model.pk)


def test_it_passes_with_a_valid_signature_when_one_is_required(make_model, model_file, trusted_signer):
    # given
    digest = digest_of(CONTENT)
    model_file("m", CONTENT)
    model = make_model("m", digest=digest, signatures=[trusted_signer.sign(digest)], trust_policy=REQUIRED)

    # when
    entry = verify(model)

    # then
    assert entry.verification_status == VerificationStatus.PASSED
    assert entry.signatures[0]["verified"] is True


def test_it_fails_when_a_required_signature_is_missing(make_model, model_file, trusted_signer):
    model_file("m", CONTENT)
    model = make_model("m", digest=digest_of(CONTENT), trust_policy=REQUIRED)

    entry = verify(model)

    assert (entry.verification_status, entry.verification_reason) == (VerificationStatus.FAILED, "signature_missing")


def test_it_fails_when_the_signer_is_unknown(make_model, model_file, stranger):
    digest = digest_of(CONTENT)
    model_file("m", CONTENT)
    model = make_model("m", digest=digest, signatures=[stranger.sign(digest)], trust_policy=REQUIRED)

    entry = verify(model)

    assert (entry.verification_status, entry.verification_reason) == (VerificationStatus.FAILED, "signature_invalid")
    assert entry.signatures[0]["verified"] is False


def test_it_fails_when_the_signature_is_over_another_digest(make_model, model_file, trusted_signer):
    model_file("m", CONTENT)
    model = make_model(
        "m", digest=digest_of(CONTENT), signatures=[trusted_signer.sign(DIGEST_B)], trust_policy=REQUIRED
    )

    entry = verify(model)

    assert entry.verification_reason == "signature_invalid"


def test_it_ignores_a_deactivated_key(make_model, model_file, trusted_signer):
    digest = digest_of(CONTENT)
    model_file("m", CONTENT)
    SigningKey.objects.update(active=False)
    model = make_model("m", digest=digest, signatures=[trusted_signer.sign(digest)], trust_policy=REQUIRED)

    entry = verify(model)

    assert entry.verification_reason == "signature_invalid"


def test_it_passes_when_one_of_several_signatures_is_valid(make_model, model_file, trusted_signer, stranger):
    digest = digest_of(CONTENT)
    model_file("m", CONTENT)
    signatures = [stranger.sign(digest), trusted_signer.sign(digest)]
    model = make_model("m", digest=digest, signatures=signatures, trust_policy=REQUIRED)

    entry = verify(model)

    assert entry.verification_status == VerificationStatus.PASSED
    assert [item["verified"] for item in entry.signatures] == [False, True]


def test_it_marks_signatures_even_when_none_is_required(make_model, model_file, trusted_signer):
    digest = digest_of(CONTENT)
    model_file("m", CONTENT)
    model = make_model("m", digest=digest, signatures=[trusted_signer.sign(digest)])

    entry = verify(model)

    assert entry.verification_status == VerificationStatus.PASSED
    assert entry.signatures[0]["verified"] is True


def test_it_fails_a_mismatched_file_even_with_a_valid_signature(make_model, model_file, trusted_signer):
    model_file("m", b"tampered")
    model = make_model("m", digest=DIGEST_A, signatures=[trusted_signer.sign(DIGEST_A)], trust_policy=REQUIRED)

    entry = verify(model)

    assert entry.verification_reason == "digest_mismatch"


def test_it_checks_the_computed_digest_when_no_digest_is_expected(make_model, model_file, trusted_signer):
    model_file("m", CONTENT)
    model = make_model("m", signatures=[trusted_signer.sign(digest_of(CONTENT))], trust_policy=REQUIRED)

    entry = verify(model)

    assert (entry.verification_status, entry.verification_reason) == (VerificationStatus.WARNING, "no_expected_digest")
    assert entry.signatures[0]["verified"] is True


def test_it_rejects_a_garbled_signature_value(trusted_signer):
    signature = trusted_signer.sign(DIGEST_A)
    signature["value"] = "!!!"

    [checked] = check_signatures([signature], DIGEST_A, trusted_keys())

    assert checked["verified"] is False


def test_it_skips_a_stored_key_that_does_not_decode(db):
    SigningKey.objects.create(signer="broken", public_key="AAAA")

    assert trusted_keys() == {}
