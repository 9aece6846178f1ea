"""A token's stored form: importable without Django, so that bench/floor_app.py stores its token as the project does."""

from __future__ import annotations

import hashlib


def hash_token(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
