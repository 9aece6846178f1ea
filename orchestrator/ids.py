"""Identifier rules shared by every resource (SPEC §1).

Ids are at most 128 characters from `[A-Za-z0-9._:-]`. Model ids may also
contain `/` (as in `hf:org/repo/file.gguf`) but never a `..` segment, a
leading `/` or a backslash, so they can't escape a directory when used as a
relative path.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 128
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_MODEL_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_valid_model_id(value: object) -> bool:
    if not isinstance(value, str) or _MODEL_ID.fullmatch(value) is None:
        return False
    if value.startswith("/"):
        return False
    return all(segment not in ("..", "") for segment in value.split("/"))


def id_error(value: object) -> str | None:
    """A sentence saying why `value` is not an id, or None when it is one."""
    if is_valid_id(value):
        return None
    return f"must be 1-{MAX_ID_LENGTH} characters from A-Z a-z 0-9 . _ : -"


def model_id_error(value: object) -> str | None:
    if is_valid_model_id(value):
        return None
    return (
        f"must be 1-{MAX_ID_LENGTH} characters from A-Z a-z 0-9 . _ : - /, "
        "without a leading '/', an empty or '..' segment, or a backslash"
    )
