"""The SSE parser gives the same fields however the bytes are cut between reads."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.engines.sse import Field, SSEParser, parse_line

# Multi-byte characters of every length (2: é, 3: 日, 4: 🙂), a comment, CRLF and CR line ends,
# a field without a space, an empty data line, and U+2028, which is not a line end in SSE.
STREAM = (
    ": keep-alive\n\n"
    'data: {"content":"café"}\n\n'
    'data:{"content":"日本"}\r\n\r\n'
    'data: {"content":"🙂 \u2028 ok"}\r\r'
    "event: ping\n"
    "data:\n\n"
    "data: [DONE]\n\n"
).encode()

EXPECTED = [
    Field("data", '{"content":"café"}'),
    Field("data", '{"content":"日本"}'),
    Field("data", '{"content":"🙂 \u2028 ok"}'),
    Field("event", "ping"),
    Field("data", ""),
    Field("data", "[DONE]"),
]


def parse(chunks: list[bytes]) -> list[Field]:
    parser = SSEParser()
    fields = [field for chunk in chunks for field in parser.feed(chunk)]
    return fields + parser.close()


def test_it_parses_a_stream_in_one_read():
    assert parse([STREAM]) == EXPECTED


def test_it_parses_a_stream_cut_at_every_position():
    for cut in range(len(STREAM) + 1):
        assert parse([STREAM[:cut], STREAM[cut:]]) == EXPECTED, f"cut at byte {cut}"


def test_it_parses_a_stream_cut_at_every_pair_of_positions():
    for first, second in itertools.combinations(range(len(STREAM) + 1), 2):
        chunks = [STREAM[:first], STREAM[first:second], STREAM[second:]]
        assert parse(chunks) == EXPECTED, f"cuts at bytes {first} and {second}"


def test_it_parses_a_stream_fed_byte_by_byte():
    assert parse([bytes([b]) for b in STREAM]) == EXPECTED


def test_it_hands_out_a_line_as_soon_as_its_end_arrives():
    parser = SSEParser()

    assert parser.feed(b'data: {"a":') == []
    assert parser.feed(b"1}\n") == [Field("data", '{"a":1}')]
    assert parser.feed(b"\n") == []


def test_it_keeps_a_split_character_until_it_is_whole():
    parser = SSEParser()

    assert parser.feed(b'data: {"content":"caf\xc3') == []
    assert parser.feed(b'\xa9"}\n\n') == [Field("data", '{"content":"café"}')]


def test_it_returns_a_last_line_without_line_end_at_close():
    parser = SSEParser()

    assert parser.feed(b"data: [DONE]") == []
    assert parser.close() == [Field("data", "[DONE]")]


def test_it_replaces_invalid_utf8_instead_of_failing():
    parser = SSEParser()

    assert parser.feed(b"data: a\xffb\n") == [Field("data", "a\ufffdb")]
    assert parser.feed(b"data: \xe6\x97") == []
    assert parser.close() == [Field("data", "\ufffd")]


def test_it_recognises_the_done_marker():
    assert parse_line("data: [DONE]") == Field("data", "[DONE]")
    assert Field("data", "[DONE]").is_done
    assert not Field("data", "[DONE] ").is_done
    assert not Field("event", "[DONE]").is_done


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", None),
        (": a comment", None),
        (":", None),
        ("data: x", Field("data", "x")),
        ("data:x", Field("data", "x")),
        ("data:  two spaces", Field("data", " two spaces")),
        ("data: a: b", Field("data", "a: b")),
        ("data", Field("data", "")),
        ("error: {}", Field("error", "{}")),
    ],
)
def test_it_parses_one_line(line, expected):
    assert parse_line(line) == expected
