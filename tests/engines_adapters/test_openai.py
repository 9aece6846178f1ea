"""OpenAI-compatible servers (vLLM, Triton, OpenAI): request, text deltas, usage, [DONE], embeddings."""

from __future__ import annotations

import json

import httpx
import pytest

from orchestrator.engines import adapter_for
from orchestrator.engines.base import Finished, Token, Vectors
from tests.engines_adapters.wire import URL, Body, collect, final_frames, generation, mock_generation, request, sse


def chunk(text: str, finish_reason: str | None = None) -> dict[str, object]:
    return {"choices": [{"index": 0, "text": text, "finish_reason": finish_reason}], "usage": None}


async def test_it_streams_text_deltas_and_ends_at_done_with_the_usage(engine_wire):
    mock_generation(engine_wire, "openai", Body([generation("openai", ["Hel", "lo", "!"])]))

    outcome = await collect("openai")

    assert outcome.error is None
    assert outcome.events == [Token("Hel"), Token("lo"), Token("!"), Finished("length", tokens_out=3, tokens_in=4)]


async def test_it_sends_the_completion_request_of_the_spec(engine_wire):
    route = mock_generation(engine_wire, "openai", Body([generation("openai", [])]))

    await collect("openai", prompt="Hi", model_ref="org/model", max_tokens=7, seed=42)

    assert json.loads(route.calls.last.request.content) == {
        "model": "org/model",
        "prompt": "Hi",
        "max_tokens": 7,
        "seed": 42,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_it_lets_a_single_model_server_pick_its_model_when_none_is_named(engine_wire):
    route = mock_generation(engine_wire, "openai", Body([generation("openai", [])]))

    await collect("openai", model_ref="")

    assert "model" not in json.loads(route.calls.last.request.content)


async def test_it_keeps_text_that_arrives_with_the_finish_reason(engine_wire):
    mock_generation(engine_wire, "openai", Body([sse(chunk("a"), chunk("b", "stop"), "[DONE]")]))

    outcome = await collect("openai")

    assert outcome.events == [Token("a"), Token("b"), Finished("stop")]


@pytest.mark.parametrize(("reason", "expected"), [("stop", "stop"), ("length", "length"), ("tool_calls", "stop")])
async def test_it_maps_the_finish_reason(engine_wire, reason, expected):
    mock_generation(engine_wire, "openai", Body([sse(chunk("", reason), "[DONE]")]))

    outcome = await collect("openai")

    assert outcome.events == [Finished(expected)]


async def test_it_fails_an_aborted_generation(engine_wire):
    mock_generation(engine_wire, "openai", Body([sse(chunk("a"), chunk("", "abort"), "[DONE]")]))

    outcome = await collect("openai")

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", False)


async def test_it_finishes_a_stream_that_closes_after_the_finish_reason_without_done(engine_wire):
    # Some servers without stream_options support end the body after the last chunk.
    mock_generation(engine_wire, "openai", Body([sse(chunk("a"), chunk("", "length"))]))

    outcome = await collect("openai")

    assert outcome.events == [Token("a"), Finished("length")]


async def test_it_fails_on_done_before_any_finish_reason(engine_wire):
    mock_generation(engine_wire, "openai", Body([sse(chunk("a"), "[DONE]")]))

    outcome = await collect("openai")

    assert outcome.tokens == ["a"]
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", False)


async def test_it_ignores_chunks_without_choices_before_the_end(engine_wire):
    frames = [{"choices": [], "usage": None}, chunk("x"), *final_frames("openai", ["x"])]
    mock_generation(engine_wire, "openai", Body([sse(*frames)]))

    outcome = await collect("openai")

    assert outcome.events == [Token("x"), Finished("length", tokens_out=1, tokens_in=4)]


@pytest.mark.parametrize("engine", ["vllm", "openai", "triton"])
async def test_it_serves_every_openai_compatible_engine(engine_wire, engine):
    mock_generation(engine_wire, "openai", Body([generation("openai", ["ok"])]))

    adapter = adapter_for(engine)
    events = [event async for event in adapter.stream(request())]

    assert adapter.engine == engine
    assert events[0] == Token("ok")


async def test_it_embeds_in_index_order_with_the_prompt_tokens(engine_wire):
    answer = {
        "object": "list",
        "data": [{"index": 1, "embedding": [0.0, 1.0]}, {"index": 0, "embedding": [1.0, 0.0]}],
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }
    route = engine_wire.post("/v1/embeddings").respond(200, json=answer)

    outcome = await collect("openai", workload="embedding", inputs=("a", "b"), model_ref="e5")

    assert json.loads(route.calls.last.request.content) == {"model": "e5", "input": ["a", "b"]}
    assert outcome.events == [Vectors(embeddings=[[1.0, 0.0], [0.0, 1.0]], tokens_in=6)]


async def test_it_fails_an_embedding_answer_of_the_wrong_shape(engine_wire):
    engine_wire.post("/v1/embeddings").respond(200, json={"data": [{"embedding": "x"}]})

    outcome = await collect("openai", workload="embedding", inputs=("a",))

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", True)


async def test_it_is_healthy_when_health_answers_200(respx_mock):
    respx_mock.get(f"{URL}/health").mock(return_value=httpx.Response(200))

    assert await adapter_for("vllm").health(URL) is True


async def test_it_falls_back_to_the_model_list_without_a_health_route(respx_mock):
    respx_mock.get(f"{URL}/health").mock(return_value=httpx.Response(404))
    models = respx_mock.get(f"{URL}/v1/models").mock(return_value=httpx.Response(200, json={"data": []}))

    assert await adapter_for("openai").health(URL) is True
    assert models.called


async def test_it_is_unhealthy_when_health_fails(respx_mock):
    respx_mock.get(f"{URL}/health").mock(return_value=httpx.Response(500))

    assert await adapter_for("vllm").health(URL) is False


async def test_it_reads_the_version_of_vllm(respx_mock):
    respx_mock.get(f"{URL}/version").mock(return_value=httpx.Response(200, json={"version": "0.11.0"}))

    assert await adapter_for("vllm").engine_version(URL) == "0.11.0"


async def test_it_reports_an_empty_version_when_unknown(respx_mock):
    respx_mock.get(f"{URL}/version").mock(return_value=httpx.Response(404))

    assert await adapter_for("triton").engine_version(URL) == ""
