"""The fake model: a fixed text cut into word-sized tokens, prompt counting, hashed embeddings."""

from __future__ import annotations

import hashlib
import math
import re
import struct
from collections.abc import Sequence

# Non-ASCII on purpose (accents, CJK, an emoji outside the BMP): adapters must
# survive multi-byte characters, and the split_utf8 fault needs some to split.
DEFAULT_TEXT = (
    "The quick brown fox jumps over the lazy dog while a naïve robot orders a café au lait "
    "in a small shop near Kyoto, 日本. It smiles 🙂 and counts its tokens one by one, because "
    "a deterministic engine makes every failure reproducible: the same seed gives the same words "
    "in the same order, at the same pace, on every machine."
)

# Like BPE tokens: a word or one punctuation character, carrying the whitespace before it.
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])")


def split_pieces(text: str) -> tuple[str, ...]:
    """Token texts for `text`, each starting with whitespace so that cycling reads naturally."""
    pieces = _PIECE.findall(text)
    if not pieces:
        raise ValueError("the fake engine's text has no tokens")
    if not pieces[0][:1].isspace():
        pieces[0] = " " + pieces[0]
    return tuple(pieces)


def take_pieces(pieces: Sequence[str], seed: int | None, count: int) -> list[str]:
    """`count` tokens starting at `seed % len(pieces)`, wrapping around as often as needed."""
    start = (seed or 0) % len(pieces)
    return [pieces[(start + i) % len(pieces)] for i in range(count)]


def count_prompt_tokens(prompt: str) -> int:
    """Prompt length as the engines report it; whitespace-separated words are close enough."""
    return len(prompt.split())


def piece_id(piece: str) -> int:
    """A stable token id (TGI reports one per token); ids below 3 are left to special tokens."""
    return 3 + int.from_bytes(hashlib.blake2b(piece.encode(), digest_size=4).digest(), "big") % 32000


def embed(text: str, dim: int) -> list[float]:
    """A unit vector derived from a hash of `text`: equal texts embed equally, others do not."""
    raw = hashlib.shake_256(text.encode()).digest(4 * dim)
    values = [(n / 0xFFFFFFFF) * 2 - 1 for n in struct.unpack(f">{dim}I", raw)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]
