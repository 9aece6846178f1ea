"""The OpenAI dialect (vLLM/Triton frontend): completions, chat, usage chunk, [DONE], models, embeddings."""

from __future__ import annotations

import httpx
import pytest

from tests.fake_engine.wire import DONE, sse_data, sse_json

pytestmark = pytest.mark.integration

MODEL = "fake/model-7b"


def test_it_streams_text_chunks_a_finish_chunk_usage_and_done(openai):
    # given
    body = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 5, "seed": 1, "stream": True}
    body["stream_options"] = {"include_usage": True}

    # when
    response = httpx.post(f"{openai.url}/v1/completions", json=body, timeout=10)

    # then
    assert sse_data(response.text)[-1] == DONE
    *chunks, finish, usage = sse_json(response.text)
    assert len(chunks) == 5
    assert all(c["object"] == "text_completion" and c["model"] == MODEL for c in chunks)
    assert all(c["choices"][0]["finish_reason"] is None and c["choices"][0]["text"] for c in chunks)
    assert finish["choices"][0]["finish_reason"] == "length"
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}


def test_it_sends_no_usage_chunk_unless_asked(openai):
    body = {"model": MODEL, "prompt": "hi", "max_tokens": 3, "stream": True}

    response = httpx.post(f"{openai.url}/v1/completions", json=body)

    frames = sse_json(response.text)
    assert len(frames) == 4
    assert all(frame["choices"] for frame in frames)
    assert sse_data(response.text)[-1] == DONE


def test_it_streams_chat_deltas_after_a_role_delta(openai):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    body = {"model": MODEL, "messages": messages, "max_tokens": 4, "stream": True}

    response = httpx.post(f"{openai.url}/v1/chat/completions", json=body)

    role, *deltas, finish = sse_json(response.text)
    assert role["object"] == "chat.completion.chunk"
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(deltas) == 4
    assert all(d["choices"][0]["delta"]["content"] for d in deltas)
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}


def test_it_answers_one_json_with_usage_without_stream(openai):
    completion = httpx.post(f"{openai.url}/v1/completions", json={"model": MODEL, "prompt": "a b c", "max_tokens": 3})
    chat = httpx.post(
        f"{openai.url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "a b c"}], "max_tokens": 3},
    )

    text_choice = completion.json()["choices"][0]
    chat_choice = chat.json()["choices"][0]
    assert completion.json()["object"] == "text_completion"
    assert chat.json()["object"] == "chat.completion"
    assert text_choice["finish_reason"] == chat_choice["finish_reason"] == "length"
    assert chat_choice["message"] == {"role": "assistant", "content": text_choice["text"]}
    assert (
        completion.json()["usage"]
        == chat.json()["usage"]
        == {
            "prompt_tokens": 3,
            "completion_tokens": 3,
            "total_tokens": 6,
        }
    )


def test_it_lists_its_model_and_refuses_another(openai):
    models = httpx.get(f"{openai.url}/v1/models").json()
    wrong = httpx.post(f"{openai.url}/v1/completions", json={"model": "other", "prompt": "hi"})

    assert [card["id"] for card in models["data"]] == [MODEL]
    assert wrong.status_code == 404
    assert wrong.json()["error"]["code"] == 404
    assert httpx.get(f"{openai.url}/health").status_code == 200


def test_it_embeds_inputs_with_usage(openai):
    response = httpx.post(f"{openai.url}/v1/embeddings", json={"model": MODEL, "input": ["naïve", "two words"]})

    answer = response.json()
    assert [item["index"] for item in answer["data"]] == [0, 1]
    assert all(len(item["embedding"]) == 16 for item in answer["data"])
    assert answer["usage"] == {"prompt_tokens": 3, "total_tokens": 3}
