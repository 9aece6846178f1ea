"""The TGI dialect: /generate_stream with a special token to skip, /generate, /info."""

from __future__ import annotations

import httpx
import pytest

from tests.fake_engine.wire import sse_json

pytestmark = pytest.mark.integration


def test_it_streams_tokens_led_by_a_special_one_and_ends_with_details(tgi):
    # given
    body = {"inputs": "What is the capital of France?", "parameters": {"max_new_tokens": 5, "seed": 7}}

    # when
    response = httpx.post(f"{tgi.url}/generate_stream", json=body, timeout=10)

    # then
    first, *middle, last = sse_json(response.text)
    assert first["token"] == {"id": 1, "text": "<s>", "logprob": 0.0, "special": True}
    assert all(f["token"]["special"] is False and f["generated_text"] is None for f in middle)
    assert all(f["details"] is None for f in [first, *middle])
    assert len(middle) == 4
    texts = [f["token"]["text"] for f in [*middle, last]]
    assert last["generated_text"] == "".join(texts)
    assert last["details"] == {"finish_reason": "length", "generated_tokens": 5, "seed": 7, "input_length": 6}


def test_it_answers_generate_with_optional_details(tgi):
    plain = httpx.post(f"{tgi.url}/generate", json={"inputs": "hi", "parameters": {"max_new_tokens": 3}})
    detailed = httpx.post(
        f"{tgi.url}/generate", json={"inputs": "hi", "parameters": {"max_new_tokens": 3, "details": True}}
    )

    assert set(plain.json()) == {"generated_text"}
    details = detailed.json()["details"]
    assert detailed.json()["generated_text"] == plain.json()["generated_text"]
    assert (details["finish_reason"], details["generated_tokens"]) == ("length", 3)


def test_it_describes_itself_on_info_and_health(tgi):
    info = httpx.get(f"{tgi.url}/info").json()

    assert info["model_id"] == "fake/model-7b"
    assert info["max_total_tokens"] == 4096
    assert info["max_concurrent_requests"] == 4
    assert info["version"]
    assert httpx.get(f"{tgi.url}/health").status_code == 200
