"""An incremental parser for the server-sent events that engines stream.

Bytes arrive as the network delivers them: a line, or a multi-byte UTF-8
character, may be cut anywhere between two reads. The parser keeps the
unfinished tail and hands out each complete line as a `Field` as soon as its
end arrives. Engines send one `data:` line per event, so a line is dispatched
at once rather than waiting for the blank line that closes the event.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class Field:
    """One `name: value` line of an event stream (`data`, `event`, `error`, ...)."""

    name: str
    value: str

    @property
    def is_data(self) -> bool:
        return self.name == "data"

    @property
    def is_done(self) -> bool:
        """The OpenAI end-of-stream marker, `data: [DONE]`."""
        return self.name == "data" and self.value == DONE


class SSEParser:
    """Feed byte chunks of any size; get the complete fields seen so far.

    Comments (`: ...`) and blank lines are dropped. Line ends may be `\\n`,
    `\\r\\n` or `\\r`. Invalid UTF-8 becomes U+FFFD: one mangled character is
    better than failing a task mid-stream.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""

    def feed(self, chunk: bytes) -> list[Field]:
        return self._lines(self._decoder.decode(chunk), final=False)

    def close(self) -> list[Field]:
        """The end of the stream: what is left, including a last line without its line end."""
        return self._lines(self._decoder.decode(b"", final=True), final=True)

    def _lines(self, text: str, *, final: bool) -> list[Field]:
        text = self._tail + text
        if "\r" in text:
            # A "\r\n" cut between two reads yields an extra blank line, which is ignored anyway.
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        self._tail = "" if final else lines.pop()
        return [field for field in map(parse_line, lines) if field is not None]


def parse_line(line: str) -> Field | None:
    """A field, or None for a blank line or a comment."""
    if not line or line.startswith(":"):
        return None
    name, _, value = line.partition(":")
    return Field(name, value.removeprefix(" "))
