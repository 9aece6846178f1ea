"""Catalog fixtures: entries, Ed25519 signing keys, nodes and pools built directly."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from catalog.models import CatalogModel, SigningKey
from catalog.services import create_model
from catalog.types import ModelSpec, Signature
from nodes.models import Node, NodeStatus
from pools.models import Pool

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def digest_of(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


@pytest.fixture
def make_model(db: None) -> Callable[..., CatalogModel]:
    """Create a catalog entry through the service, with any ModelSpec fields."""

    def make(model_id: str = "llama-3-8b", **fields: Any) -> CatalogModel:
        return create_model(ModelSpec(id=model_id, **fields))

    return make


@pytest.fixture
def model_file(models_dir: Path) -> Callable[[str, bytes], Path]:
    """Write a model file under ORCHD_MODELS_DIR at the path its id names."""

    def write(model_id: str, content: bytes) -> Path:
        path = models_dir / model_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    return write


@dataclass
class Signer:
    name: str
    private_key: Ed25519PrivateKey

    def public_b64(self) -> str:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def sign(self, digest: str) -> Signature:
        value = base64.b64encode(self.private_key.sign(digest.encode("utf-8"))).decode()
        return {"signer": self.name, "algo": "ed25519", "value": value, "verified": False, "timestamp_ms": 1}


@pytest.fixture
def trusted_signer(db: None) -> Signer:
    """A key pair whose public half is configured (active) in the catalog."""
    signer = Signer("release-team", Ed25519PrivateKey.generate())
    SigningKey.objects.create(signer=signer.name, public_key=signer.public_b64())
    return signer


@pytest.fixture
def stranger() -> Signer:
    """A key pair nobody configured."""
    return Signer("release-team", Ed25519PrivateKey.generate())


@pytest.fixture
def make_pool(db: None) -> Callable[..., Pool]:
    """A pool on a node (created on demand) with the given status."""

    def make(
        pool_id: str,
        *,
        node_id: str = "node-1",
        node_status: str = NodeStatus.ONLINE,
        models: list[str] | None = None,
        **fields: Any,
    ) -> Pool:
        node, _ = Node.objects.get_or_create(id=node_id, defaults={"status": node_status})
        defaults: dict[str, Any] = {"engine": "llamacpp", "engine_url": "http://127.0.0.1:9000", "ready": True}
        return Pool.objects.create(id=pool_id, node=node, model_refs=models or [], **{**defaults, **fields})

    return make
