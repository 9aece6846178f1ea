"""The first token must come within first_token_timeout_s, each next one within idle_timeout_s."""

from __future__ import annotations

import time

import pytest

from tests.engines_adapters.wire import Body, collect, final_frames, generation, mock_generation, sse, token_frame

PROTOCOLS = ["llamacpp", "openai", "tgi"]

pytestmark = pytest.mark.parametrize("protocol", PROTOCOLS)


async def test_it_times_out_waiting_for_the_first_token(engine_wire, protocol):
    body = Body([], stall_s=30)
    mock_generation(engine_wire, protocol, body)

    started = time.monotonic()
    outcome = await collect(protocol, first_token_timeout_s=0.2)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("DECODE_TIMEOUT", True)
    assert 0.2 <= time.monotonic() - started < 2
    assert await body.wait_closed()


async def test_it_counts_the_wait_for_response_headers_towards_the_first_token(engine_wire, protocol):
    mock_generation(engine_wire, protocol, Body([])).hang()  # queued in the engine

    outcome = await collect(protocol, first_token_timeout_s=0.2)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("DECODE_TIMEOUT", True)


async def test_it_times_out_when_tokens_stop_coming(engine_wire, protocol):
    body = Body([generation(protocol, ["a", "b"], final=False)], stall_s=30)
    mock_generation(engine_wire, protocol, body)

    outcome = await collect(protocol, idle_timeout_s=0.2)

    assert outcome.tokens == ["a", "b"]
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("DECODE_TIMEOUT", False)
    assert await body.wait_closed()


async def test_it_does_not_count_keep_alive_comments_as_progress(engine_wire, protocol):
    pings: list[bytes | float] = [b": ping\n\n", 0.05] * 20
    body = Body([sse(token_frame(protocol, "a")), *pings])
    mock_generation(engine_wire, protocol, body)

    started = time.monotonic()
    outcome = await collect(protocol, idle_timeout_s=0.2)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("DECODE_TIMEOUT", False)
    assert time.monotonic() - started < 3  # ends on the idle timeout, not by waiting for the stream


async def test_it_allows_a_long_generation_whose_tokens_come_in_time(engine_wire, protocol):
    # 10 tokens 0.05 s apart take 0.5 s in all, well over the idle timeout of 0.2 s.
    texts = [f" t{i}" for i in range(10)]
    chunks: list[bytes | float] = []
    for text in texts:
        chunks += [0.05, sse(token_frame(protocol, text))]
    mock_generation(engine_wire, protocol, Body([*chunks, sse(*final_frames(protocol, texts))]))

    outcome = await collect(protocol, first_token_timeout_s=0.2, idle_timeout_s=0.2)

    assert outcome.error is None
    assert outcome.tokens == texts
