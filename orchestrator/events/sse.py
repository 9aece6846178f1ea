"""Frames on the wire: the Server-Sent Events encoding of SPEC §3.4."""

from __future__ import annotations

from .base import Frame

# A comment line: ignored by SSE clients, it keeps proxies from closing an idle stream.
KEEPALIVE = b": keep-alive\n\n"

# Valid JSON leaves these unescaped with ensure_ascii=False, yet line readers
# that follow str.splitlines() (httpx's among them) break lines on them.
_LINE_BREAKS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def format_frame(frame: Frame) -> bytes:
    """`id`, `event` and `data` (compact JSON on one line), then a blank line."""
    data = frame.text
    for char, escaped in _LINE_BREAKS.items():
        if char in data:
            data = data.replace(char, escaped)
    return f"id: {frame.seq}\nevent: {frame.event}\ndata: {data}\n\n".encode()
