"""Ed25519 signatures over model digests, checked against the keys operators trust."""

from __future__ import annotations

import base64
import binascii
import logging

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from catalog.models import ED25519, SigningKey
from catalog.types import Signature

logger = logging.getLogger("catalog")


def trusted_keys() -> dict[str, Ed25519PublicKey]:
    """Active keys by signer; a key that does not decode is skipped (and logged), never fatal."""
    keys: dict[str, Ed25519PublicKey] = {}
    for signer, public_key in SigningKey.objects.active().filter(algo=ED25519).values_list("signer", "public_key"):
        try:
            keys[signer] = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        except (binascii.Error, ValueError):
            logger.warning("catalog.signing_key_invalid", extra={"signer": signer})
    return keys


def check_signatures(signatures: list[Signature], digest: str, keys: dict[str, Ed25519PublicKey]) -> list[Signature]:
    """The signatures with `verified` set: valid for `digest` under the signer's active key."""
    message = digest.encode("utf-8")
    return [{**item, "verified": bool(digest) and _is_valid(item, message, keys)} for item in signatures]


def _is_valid(signature: Signature, message: bytes, keys: dict[str, Ed25519PublicKey]) -> bool:
    key = keys.get(signature["signer"])
    if key is None or signature["algo"] != ED25519:
        return False
    try:
        key.verify(base64.b64decode(signature["value"], validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
