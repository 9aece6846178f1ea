"""text-generation-inference: request, special tokens, the final frame, health and version."""

from __future__ import annotations

import json

import httpx
import pytest

from orchestrator.engines import adapter_for
from orchestrator.engines.base import Finished, Token
from tests.engines_adapters.wire import URL, Body, collect, mock_generation, sse

BOS = {"token": {"id": 1, "text": "<s>", "special": True}, "generated_text": None, "details": None}


def frame(text: str, special: bool = False) -> dict[str, object]:
    return {"token": {"id": 5, "text": text, "logprob": -0.1, "special": special}, "generated_text": None}


def final(text: str, generated: str, reason: str = "eos_token", **details: object) -> dict[str, object]:
    return {
        "token": {"id": 2, "text": text, "special": False},
        "generated_text": generated,
        "details": {"finish_reason": reason, **details},
    }


async def test_it_skips_special_tokens_and_keeps_the_last_token_of_the_final_frame(engine_wire):
    frames = [BOS, frame("Hi"), frame("</s>", special=True), final(" there", "Hi there", generated_tokens=2)]
    mock_generation(engine_wire, "tgi", Body([sse(*frames)]))

    outcome = await collect("tgi")

    assert outcome.error is None
    assert outcome.events == [Token("Hi"), Token(" there"), Finished("stop", tokens_out=2)]


async def test_it_sends_the_generate_request_of_the_spec(engine_wire):
    route = mock_generation(engine_wire, "tgi", Body([sse(final("", ""))]))

    await collect("tgi", prompt="Hi", max_tokens=7, seed=42)

    assert json.loads(route.calls.last.request.content) == {
        "inputs": "Hi",
        "parameters": {"max_new_tokens": 7, "seed": 42, "details": True},
    }


@pytest.mark.parametrize(("temperature", "sampling"), [(0.7, {"temperature": 0.7, "do_sample": True}), (0.0, {})])
async def test_it_samples_only_at_a_positive_temperature(engine_wire, temperature, sampling):
    route = mock_generation(engine_wire, "tgi", Body([sse(final("", ""))]))

    await collect("tgi", temperature=temperature)

    parameters = json.loads(route.calls.last.request.content)["parameters"]
    assert {k: v for k, v in parameters.items() if k in ("temperature", "do_sample")} == sampling


@pytest.mark.parametrize(
    ("reason", "expected"), [("eos_token", "stop"), ("stop_sequence", "stop"), ("length", "length")]
)
async def test_it_maps_the_finish_reason(engine_wire, reason, expected):
    mock_generation(engine_wire, "tgi", Body([sse(final("", "", reason, generated_tokens=3, input_length=9))]))

    outcome = await collect("tgi")

    assert outcome.events == [Finished(expected, tokens_out=3, tokens_in=9)]


async def test_it_finishes_without_details(engine_wire):
    mock_generation(engine_wire, "tgi", Body([sse({"token": {"text": "a", "special": False}, "generated_text": "a"})]))

    outcome = await collect("tgi")

    assert outcome.events == [Token("a"), Finished("stop")]


async def test_it_refuses_embeddings(respx_mock):
    outcome = await collect("tgi", workload="embedding", inputs=("a",))

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("INVALID_PARAMS", True)


async def test_it_is_healthy_when_health_answers_200(respx_mock):
    respx_mock.get(f"{URL}/health").mock(return_value=httpx.Response(200))

    assert await adapter_for("tgi").health(URL) is True


async def test_it_reads_the_version_from_info(respx_mock):
    respx_mock.get(f"{URL}/info").mock(return_value=httpx.Response(200, json={"version": "3.3.6", "sha": None}))

    assert await adapter_for("tgi").engine_version(URL) == "3.3.6"
