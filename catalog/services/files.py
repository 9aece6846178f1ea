"""Reading model files: streamed hashing, never the whole file in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

# 1 MiB: large enough that hashing a multi-GB model is I/O-bound, small enough
# that any number of concurrent jobs stay within a few MiB of memory.
CHUNK_BYTES = 1024 * 1024


class ModelFileError(Exception):
    """The model file can't be hashed; `reason` is the verification reason code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sha256_file(path: Path) -> str:
    """`sha256:<hex>` of the file at `path`."""
    if not path.is_file():
        raise ModelFileError("file_not_found")
    try:
        with path.open("rb") as stream:
            return sha256_stream(stream)
    except OSError as exc:
        raise ModelFileError("file_unreadable") from exc


def sha256_stream(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK_BYTES):
        digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"
