"""llama-server: what is sent, how its frames become events, embeddings, health and version."""

from __future__ import annotations

import json

import httpx
import pytest

from orchestrator.engines import adapter_for
from orchestrator.engines.base import Finished, Token, Vectors
from tests.engines_adapters.wire import URL, Body, collect, mock_generation, sse


async def test_it_streams_each_non_empty_content_as_a_token(engine_wire):
    # given
    frames = [{"content": "Hello", "stop": False}, {"content": "", "stop": False}, {"content": " world", "stop": False}]
    final = {"content": "", "stop": True, "stop_type": "eos", "tokens_predicted": 2, "tokens_evaluated": 5}
    mock_generation(engine_wire, "llamacpp", Body([sse(*frames, final)]))

    # when
    outcome = await collect("llamacpp")

    # then
    assert outcome.error is None
    assert outcome.events == [Token("Hello"), Token(" world"), Finished("stop", tokens_out=2, tokens_in=5)]


async def test_it_sends_the_completion_request_of_the_spec(engine_wire):
    route = mock_generation(engine_wire, "llamacpp", Body([sse({"content": "", "stop": True})]))

    await collect("llamacpp", prompt="Hi", max_tokens=7, seed=42, temperature=0.2)

    assert json.loads(route.calls.last.request.content) == {
        "prompt": "Hi",
        "n_predict": 7,
        "seed": 42,
        "temperature": 0.2,
        "stream": True,
        "cache_prompt": True,
    }


async def test_it_leaves_out_seed_and_temperature_when_unset(engine_wire):
    route = mock_generation(engine_wire, "llamacpp", Body([sse({"content": "", "stop": True})]))

    await collect("llamacpp", prompt="Hi")

    assert set(json.loads(route.calls.last.request.content)) == {"prompt", "n_predict", "stream", "cache_prompt"}


@pytest.mark.parametrize(
    ("final", "expected"),
    [
        (
            {"stop_type": "limit", "tokens_predicted": 8, "tokens_evaluated": 3, "timings": {"predicted_ms": 99.6}},
            Finished("length", tokens_out=8, tokens_in=3, decode_ms=100),
        ),
        (
            {"stop_type": "eos", "timings": {"predicted_n": 6, "prompt_n": 2, "predicted_ms": 12.2}},
            Finished("stop", tokens_out=6, tokens_in=2, decode_ms=12),
        ),
        ({"stop_type": "word", "truncated": True}, Finished("stop")),
        ({"stopped_limit": True, "stopped_eos": False}, Finished("length")),
        ({"tokens_predicted": 0, "timings": {"predicted_n": 4}}, Finished("stop", tokens_out=0)),
    ],
)
async def test_it_maps_the_final_frame_to_finished(engine_wire, final, expected):
    mock_generation(engine_wire, "llamacpp", Body([sse({"content": "", "stop": True, **final})]))

    outcome = await collect("llamacpp")

    assert outcome.events == [expected]


async def test_it_keeps_content_that_arrives_in_the_final_frame(engine_wire):
    mock_generation(engine_wire, "llamacpp", Body([sse({"content": "end.", "stop": True, "stop_type": "eos"})]))

    outcome = await collect("llamacpp")

    assert outcome.events == [Token("end."), Finished("stop")]


async def test_it_embeds_all_inputs_in_one_request(engine_wire):
    answer = [{"index": 1, "embedding": [[0.5, 0.25]]}, {"index": 0, "embedding": [[1, 0]]}]
    route = engine_wire.post("/embedding").respond(200, json=answer)

    outcome = await collect("llamacpp", workload="embedding", inputs=("a", "b"))

    assert json.loads(route.calls.last.request.content) == {"content": ["a", "b"]}
    assert outcome.events == [Vectors(embeddings=[[1.0, 0.0], [0.5, 0.25]])]


async def test_it_reads_the_older_single_embedding_answer(engine_wire):
    engine_wire.post("/embedding").respond(200, json={"embedding": [0.1, 0.2]})

    outcome = await collect("llamacpp", workload="embedding", inputs=("a",))

    assert outcome.events == [Vectors(embeddings=[[0.1, 0.2]])]


async def test_it_refuses_per_token_embeddings(engine_wire):
    answer = [{"index": 0, "embedding": [[0.1, 0.2], [0.3, 0.4]]}]
    engine_wire.post("/embedding").respond(200, json=answer)

    outcome = await collect("llamacpp", workload="embedding", inputs=("a",))

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", True)
    assert "pooling" in outcome.error.message


async def test_it_is_healthy_when_health_answers_200(respx_mock):
    respx_mock.get(f"{URL}/health").mock(return_value=httpx.Response(200, json={"status": "ok"}))

    assert await adapter_for("llamacpp").health(URL) is True


async def test_it_is_unhealthy_while_the_model_loads(respx_mock):
    respx_mock.get(f"{URL}/health").mock(return_value=httpx.Response(503, json={"error": {"message": "Loading"}}))

    assert await adapter_for("llamacpp").health(URL) is False


async def test_it_is_unhealthy_when_unreachable(respx_mock):
    respx_mock.get(f"{URL}/health").mock(side_effect=httpx.ConnectError("refused"))

    assert await adapter_for("llamacpp").health(URL) is False


async def test_it_reads_the_version_from_build_info(respx_mock):
    respx_mock.get(f"{URL}/props").mock(return_value=httpx.Response(200, json={"build_info": "b6500-abc"}))

    assert await adapter_for("llamacpp").engine_version(URL) == "b6500-abc"


@pytest.mark.parametrize("answer", [httpx.Response(200, json={"total_slots": 1}), httpx.Response(404)])
async def test_it_reports_an_empty_version_when_unknown(respx_mock, answer):
    respx_mock.get(f"{URL}/props").mock(return_value=answer)

    assert await adapter_for("llamacpp").engine_version(URL) == ""
