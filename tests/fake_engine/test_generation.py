"""Deterministic output: seeds, token limits, --stop-after, non-ASCII text, pacing."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.fake_engine.wire import complete, generate_request, stream_texts

pytestmark = pytest.mark.integration

LENGTH = {"llamacpp": "limit", "openai": "length", "tgi": "length"}
STOP = {"llamacpp": "eos", "openai": "stop", "tgi": "eos_token"}


@pytest.fixture(params=["llamacpp", "openai", "tgi"])
def engine(request):
    return request.getfixturevalue(request.param)


def test_it_repeats_the_same_text_for_the_same_seed(engine):
    first = complete(engine, "hello", max_tokens=8, seed=11)
    again = complete(engine, "a different prompt", max_tokens=8, seed=11)

    assert first == again


def test_it_starts_elsewhere_in_the_text_for_another_seed(engine):
    assert complete(engine, "hello", max_tokens=8, seed=1) != complete(engine, "hello", max_tokens=8, seed=2)


def test_it_streams_the_same_tokens_it_answers_at_once(engine):
    path, body = generate_request(engine.protocol, "hello", max_tokens=6, seed=5, stream=True)
    streamed = httpx.post(engine.url + path, json=body, timeout=10)

    tokens, ended = stream_texts(engine.protocol, streamed.text)
    text, _ = complete(engine, "hello", max_tokens=6, seed=5)
    assert ended
    assert text.startswith("".join(tokens))


def test_it_stops_at_max_tokens_with_length(engine):
    text, finish = complete(engine, "hello", max_tokens=70, seed=0)

    assert finish == LENGTH[engine.protocol]
    assert text.startswith(" The quick brown fox")
    assert "café" in text
    assert "🙂" in text
    assert "日本" in text


def test_it_uses_the_default_max_tokens_when_none_is_given(llamacpp):
    answer = httpx.post(f"{llamacpp.url}/completion", json={"prompt": "hi", "n_predict": -1}).json()

    assert answer["tokens_predicted"] == 32


@pytest.mark.parametrize("protocol", ["llamacpp", "openai", "tgi"])
def test_it_ends_with_stop_when_the_request_allows_more_than_stop_after(fake_engine, protocol):
    engine = fake_engine(protocol, stop_after=3)

    short_text, short_finish = complete(engine, "hi", max_tokens=3, seed=0)
    long_text, long_finish = complete(engine, "hi", max_tokens=50, seed=0)

    assert short_finish == LENGTH[protocol]
    assert long_finish == STOP[protocol]
    assert long_text == short_text == " The quick brown"


def test_it_paces_tokens_after_the_time_to_first_token(llamacpp):
    body = {"prompt": "[[fault:ttft_ms=200,tps=50]] hi", "n_predict": 6}

    started = time.monotonic()
    answer = httpx.post(f"{llamacpp.url}/completion", json=body, timeout=10).json()
    elapsed = time.monotonic() - started

    # 200 ms to the first token, then 5 gaps of 20 ms.
    assert 0.29 <= elapsed < 1.5
    assert answer["timings"]["prompt_ms"] >= 195
    assert 95 <= answer["timings"]["predicted_ms"] < 400


def test_it_never_generates_past_the_context(fake_engine):
    engine = fake_engine("llamacpp", ctx_size=8)

    answer = httpx.post(f"{engine.url}/completion", json={"prompt": "three word prompt", "n_predict": 100}).json()

    assert (answer["tokens_predicted"], answer["stop_type"]) == (5, "limit")
