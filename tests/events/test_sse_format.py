"""Frames on the wire (SPEC §3.4)."""

from __future__ import annotations

import json
import math

import pytest

from orchestrator.events.base import Frame, decode_all, encode_data
from orchestrator.events.sse import KEEPALIVE, format_frame


def test_it_writes_id_event_and_one_line_of_compact_json() -> None:
    frame = Frame(7, "token", {"t": "hi", "i": 3})

    assert format_frame(frame) == b'id: 7\nevent: token\ndata: {"t":"hi","i":3}\n\n'


def test_it_keeps_text_beyond_ascii_as_utf8() -> None:
    frame = Frame(0, "token", {"t": "héllo 👋"})

    assert format_frame(frame) == 'id: 0\nevent: token\ndata: {"t":"héllo 👋"}\n\n'.encode()


def test_it_keeps_line_breaks_in_text_on_one_line() -> None:
    # given: every character some line reader splits on
    text = "a\nb\rc\x0bd\x0ce\x1cf\x85g\u2028h\u2029i"
    frame = Frame(1, "token", {"t": text})

    # when
    wire = format_frame(frame).decode()

    # then: one data line, which parses back to the same text
    id_line, event_line, data_line, blank, end = wire.split("\n")
    assert (id_line, event_line, blank, end) == ("id: 1", "event: token", "", "")
    assert data_line.splitlines() == [data_line]
    assert json.loads(data_line.removeprefix("data: ")) == {"t": text}


def test_keepalive_is_an_sse_comment() -> None:
    assert KEEPALIVE == b": keep-alive\n\n"


def test_decode_all_gives_each_frames_data_as_its_own_decoding_would():
    frames = [
        Frame.encoded(0, "started", encode_data({"queue_position": 0, "engine": "llamacpp"})),
        Frame(1, "token", {"t": "héllo 👋\u2028", "i": 0}),
        Frame.encoded(2, "token", encode_data({"t": '"quoted" ,[]{}', "i": 1})),
        Frame.encoded(3, "end", encode_data({"tokens_out": 2, "nested": {"a": [1, 2.5, None, True]}})),
    ]

    assert decode_all(frames) == [frame.data for frame in frames]
    assert decode_all([]) == []


def test_encode_data_is_compact_json_with_characters_as_they_are():
    assert encode_data({"t": "héllo", "i": 3, "x": [1, None]}) == '{"t":"héllo","i":3,"x":[1,null]}'


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"t": " word", "i": 12},
        {"t": 'héllo 👋\n\u2028\x00"\\', "i": 0},
        {"f": 1.5, "big": 1e300, "small": -2.5e-300, "int": 10**40, "nan": math.nan, "inf": -math.inf},
        {"nested": {"list": [1, [2, [3, {"k": None}]], True, False], "tuple": (1, "a")}},
        {3: "int key", 2.5: "float key", True: "bool key", None: "none key"},
    ],
)
def test_encode_data_writes_what_json_dumps_writes(data):
    assert encode_data(data) == json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def test_encode_data_refuses_what_is_not_json():
    with pytest.raises(TypeError):
        encode_data({"odd": {1, 2}})
    assert encode_data({"after": "a failure"}) == '{"after":"a failure"}'
