"""The artifact document and its content address (SPEC §5).

Pure functions, no database: the document is `{kind, content, tags, parent,
metadata}` after defaults, and its id is the SHA-256 of its canonical JSON.
Anyone can recompute an id from a document, so these rules never change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

DIGEST_PREFIX = "sha256:"
DIGEST_LENGTH = len(DIGEST_PREFIX) + 64


class ArtifactDocument(TypedDict):
    """What a client posted, with defaults applied; exactly what is hashed."""

    kind: str
    content: dict[str, Any]
    tags: list[str]
    parent: str | None
    metadata: dict[str, Any]


class InvalidDocument(ValueError):
    """The document cannot be stored; `field` names the offending member."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def build_document(
    kind: str,
    content: Mapping[str, Any],
    tags: Iterable[str] | None = None,
    parent: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ArtifactDocument:
    """Apply the SPEC's defaults: tags [] (then sorted), parent null, metadata {}."""
    return ArtifactDocument(
        kind=kind,
        content=dict(content),
        tags=sorted(tags or []),
        parent=parent,
        metadata=dict(metadata or {}),
    )


def canonical_json(value: Any) -> bytes:
    """Keys sorted, no spaces, UTF-8 with non-ASCII unescaped.

    `allow_nan=False` only refuses what is not JSON at all (NaN, Infinity); for
    every valid document the bytes are those the SPEC describes.
    """
    return _canonical_text(value).encode("utf-8")


def _canonical_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_digest(document: ArtifactDocument) -> str:
    """`sha256:<hex>` of the canonical JSON of the whole document: the artifact id."""
    return DIGEST_PREFIX + hashlib.sha256(canonical_json(document)).hexdigest()


@dataclass(frozen=True)
class EncodedDocument:
    """A checked document's id and the canonical JSON of the members stored as text."""

    digest: str
    content: bytes
    metadata: bytes


def encode_document(document: ArtifactDocument) -> EncodedDocument:
    """`check_storable`, `canonical_digest` and the stored members' canonical JSON, each encoded once.

    The canonical JSON of the whole document is put together from its
    members' (sorted keys make it their concatenation), so the content, by
    far the largest part, is encoded once rather than twice. The checks run
    on that text (a NUL can only appear in it as the escape `\\u0000`) and
    on the containers alone (how deep they nest). Only a document that might
    fail them is walked (`check_storable`), which decides exactly; so the
    outcome, the error raised included, is that of the functions it replaces.
    """
    texts: dict[str, str] = {}
    failure: Exception | None = None
    try:
        for name in _MEMBERS:  # in the whole document's order: the first failure is the one it had
            texts[name] = _canonical_text(document[name])  # type: ignore[literal-required]
    except (ValueError, TypeError, RecursionError) as error:
        failure = error
    if failure is not None:
        check_storable(document)  # what cannot be stored is reported as such first, as before
        raise failure
    if not all(_plainly_storable(document[name], texts[name]) for name in _STORED):  # type: ignore[literal-required]
        check_storable(document)
    try:
        encoded = {name: texts[name].encode("utf-8") for name in _MEMBERS}
    except UnicodeEncodeError:
        # A character UTF-8 cannot hold (a lone surrogate): fail as the whole document's encoding did.
        ("{" + ",".join(f'"{name}":{texts[name]}' for name in _MEMBERS) + "}").encode("utf-8")
        raise
    whole = b"{" + b",".join(b'"%b":%b' % (name.encode(), encoded[name]) for name in _MEMBERS) + b"}"
    return EncodedDocument(DIGEST_PREFIX + hashlib.sha256(whole).hexdigest(), encoded["content"], encoded["metadata"])


# The document's members in the order of their sorted keys (as canonical JSON writes them),
# and those `check_storable` checks.
_MEMBERS = ("content", "kind", "metadata", "parent", "tags")
_STORED = ("content", "metadata", "parent", "tags")


_CONTAINERS = (dict, list, tuple)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plainly_storable(value: Any, text: str) -> bool:
    """True when `value` (whose canonical JSON is `text`) surely passes `check_storable`.

    No NUL: in canonical JSON one can only appear as the escape `\\u0000`
    (False when a string holds that text as written: the walk then decides).
    The nesting: containers only, one level at a time, at C speed per level.
    """
    if "\\u0000" in text:
        return False
    level = [value]
    for _ in range(MAX_DEPTH):
        if not level:
            return True
        # Scalars are skipped by their exact type, the quick test; anything else that is no container is dropped next.
        level = [
            child
            for item in level
            if isinstance(item, _CONTAINERS)
            for child in (item.values() if isinstance(item, dict) else item)
            if type(child) not in _SCALARS
        ]
    return not level


def looks_like_digest(value: str) -> bool:
    """Cheap shape check, so malformed ids are a 404 without a query."""
    if len(value) != DIGEST_LENGTH or not value.startswith(DIGEST_PREFIX):
        return False
    return all(char in "0123456789abcdef" for char in value[len(DIGEST_PREFIX) :])


def check_storable(document: ArtifactDocument) -> None:
    """Raise InvalidDocument for what cannot be stored and read back everywhere.

    PostgreSQL text cannot hold U+0000, so a NUL would fail at insert time on
    one backend and not the other; and JSON nested deeper than MAX_DEPTH could
    be written but not read back within Python's recursion limit.
    """
    members = {
        "content": document["content"],
        "metadata": document["metadata"],
        "tags": document["tags"],
        "parent": document["parent"],
    }
    for field, value in members.items():
        problem = _storage_problem(value)
        if problem:
            raise InvalidDocument(field, problem)


# Far beyond any real plan or transcript, and far below the ~900 levels at
# which parsing or serialising inside a request exhausts the interpreter stack.
MAX_DEPTH = 128


def _storage_problem(value: Any) -> str | None:
    # Iterative on purpose: walking a deep document must not recurse itself.
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return "strings may not contain the NUL character (\\u0000)."
        if isinstance(item, dict | list | tuple):
            if depth >= MAX_DEPTH:
                return f"must not nest objects and arrays deeper than {MAX_DEPTH} levels."
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return None
