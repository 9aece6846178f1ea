"""The llama.cpp dialect: /completion streaming and not, /props, /slots, /health, /embedding."""

from __future__ import annotations

import httpx
import pytest

from tests.fake_engine.wire import sse_json

pytestmark = pytest.mark.integration


def test_it_streams_content_frames_then_a_stop_frame_with_timings(llamacpp):
    # given
    body = {"prompt": "Tell me a story", "n_predict": 6, "seed": 0, "temperature": 0.2, "stream": True}
    body["cache_prompt"] = True

    # when
    response = httpx.post(f"{llamacpp.url}/completion", json=body, timeout=10)

    # then
    assert response.headers["content-type"].startswith("text/event-stream")
    *tokens, final = sse_json(response.text)
    assert len(tokens) == 6
    assert all(frame["stop"] is False and frame["content"] for frame in tokens)
    assert final["stop"] is True
    assert final["content"] == ""
    assert final["stop_type"] == "limit"
    assert (final["tokens_predicted"], final["tokens_evaluated"]) == (6, 4)
    timings = final["timings"]
    assert (timings["predicted_n"], timings["prompt_n"]) == (6, 4)
    assert timings["predicted_ms"] >= 0
    assert timings["prompt_ms"] >= 0


def test_it_answers_the_whole_content_in_one_json_without_stream(llamacpp):
    streamed = httpx.post(f"{llamacpp.url}/completion", json={"prompt": "hi", "n_predict": 5, "stream": True})
    whole = httpx.post(f"{llamacpp.url}/completion", json={"prompt": "hi", "n_predict": 5})

    answer = whole.json()
    assert whole.headers["content-type"].startswith("application/json")
    assert answer["content"] == "".join(frame["content"] for frame in sse_json(streamed.text))
    assert answer["stop"] is True
    assert answer["tokens_predicted"] == answer["timings"]["predicted_n"] == 5
    assert answer["tokens_evaluated"] == answer["timings"]["prompt_n"] == 1


def test_it_describes_itself_on_props_slots_and_health(llamacpp):
    props = httpx.get(f"{llamacpp.url}/props").json()
    slots = httpx.get(f"{llamacpp.url}/slots").json()
    health = httpx.get(f"{llamacpp.url}/health")

    assert props["default_generation_settings"]["n_ctx"] == 4096
    assert props["total_slots"] == 4
    assert props["model_path"] == "fake/model-7b"
    assert props["build_info"]
    assert [slot["id"] for slot in slots] == [0, 1, 2, 3]
    assert all(slot["n_ctx"] == 4096 and slot["is_processing"] is False for slot in slots)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})


def test_it_embeds_each_input_deterministically(llamacpp):
    first = httpx.post(f"{llamacpp.url}/embedding", json={"content": "café"}).json()
    again = httpx.post(f"{llamacpp.url}/embedding", json={"input": ["café", "tea"]}).json()

    assert [item["index"] for item in again] == [0, 1]
    assert first[0]["embedding"] == again[0]["embedding"]
    assert again[0]["embedding"] != again[1]["embedding"]
    assert len(first[0]["embedding"][0]) == 16


def test_it_counts_requests_and_completions(llamacpp):
    httpx.post(f"{llamacpp.url}/completion", json={"prompt": "hi", "n_predict": 2, "stream": True})
    httpx.post(f"{llamacpp.url}/completion", json={"prompt": "hi", "n_predict": 2})

    stats = llamacpp.wait_for_stats(requests=2, completed=2)
    assert stats["requests"] == stats["completed"] == 2
    assert stats["active"] == stats["queued"] == stats["client_disconnects"] == 0
