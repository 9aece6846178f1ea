"""Every engine failure becomes an EngineError with the SPEC code and whether a token was out yet."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from orchestrator.engines import adapter_for, http
from orchestrator.engines.base import EngineError, Token
from tests.engines_adapters.wire import (
    ENGINES,
    Body,
    collect,
    generation,
    mock_generation,
    request,
    sse,
    token_frame,
)
from tests.support.web import free_port

PROTOCOLS = ["llamacpp", "openai", "tgi"]

pytestmark = pytest.mark.parametrize("protocol", PROTOCOLS)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_it_reports_an_overloaded_or_broken_engine_as_retriable(engine_wire, protocol, status):
    body = Body([b'{"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}'])
    mock_generation(engine_wire, protocol, body, status=status)

    outcome = await collect(protocol)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token, outcome.error.status) == (
        "WORKER_RESET",
        True,
        status,
    )
    assert "Loading model" in outcome.error.message


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (400, b'{"error": {"message": "n_predict is too large", "type": "invalid_request_error"}}', "n_predict is"),
        (404, b'{"error": {"message": "The model `x` does not exist.", "code": 404}}', "does not exist"),
        (422, b'{"error": "Input validation error: inputs too long", "error_type": "validation"}', "too long"),
        (400, b'{"detail": "bad field"}', "bad field"),
        (413, b"<html>too large</html>", "<html>too large</html>"),
    ],
)
async def test_it_reports_a_refused_request_as_invalid_params(engine_wire, protocol, status, body, message):
    mock_generation(engine_wire, protocol, Body([body]), status=status)

    outcome = await collect(protocol)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token, outcome.error.status) == (
        "INVALID_PARAMS",
        True,
        status,
    )
    assert message in outcome.error.message


async def test_it_reports_a_refused_connection_as_retriable(protocol):
    outcome = await collect(protocol, engine_url=f"http://127.0.0.1:{free_port()}")

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token, outcome.error.status) == ("WORKER_RESET", True, None)


async def test_it_reports_a_connect_timeout_as_retriable(monkeypatch, protocol):
    # A documentation address (RFC 5737) that nothing answers: the connect times out (or has no route).
    monkeypatch.setattr(http, "_STREAM_TIMEOUT", aiohttp.ClientTimeout(total=None, sock_connect=0.05))

    outcome = await collect(protocol, engine_url="http://192.0.2.1:9", first_token_timeout_s=5)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token, outcome.error.status) == ("WORKER_RESET", True, None)


async def test_it_reports_a_connection_reset_before_the_answer_as_retriable(engine_wire, protocol):
    mock_generation(engine_wire, protocol, Body([])).reset()

    outcome = await collect(protocol)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token, outcome.error.status) == ("WORKER_RESET", True, None)


async def test_it_reports_a_stream_cut_after_two_tokens(engine_wire, protocol):
    mock_generation(engine_wire, protocol, Body([generation(protocol, ["a", "b"], final=False)], fail=True))

    outcome = await collect(protocol)

    assert outcome.tokens == ["a", "b"]
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", False)


async def test_it_reports_a_body_that_ends_without_the_final_frame(engine_wire, protocol):
    mock_generation(engine_wire, protocol, Body([generation(protocol, ["a", "b"], final=False)]))

    outcome = await collect(protocol)

    assert outcome.tokens == ["a", "b"]
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", False)
    assert "final frame" in outcome.error.message


async def test_it_reports_an_empty_body_before_any_token(engine_wire, protocol):
    mock_generation(engine_wire, protocol, Body([]))

    outcome = await collect(protocol)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", True)


async def test_it_reports_invalid_json_mid_stream(engine_wire, protocol):
    mock_generation(engine_wire, protocol, Body([sse(token_frame(protocol, "a"), '{"content": "b"')]))

    outcome = await collect(protocol)

    assert outcome.tokens == ["a"]
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", False)
    assert "invalid JSON" in outcome.error.message


async def test_it_reports_a_frame_that_is_not_an_object(engine_wire, protocol):
    mock_generation(engine_wire, protocol, Body([sse([1, 2])]))

    outcome = await collect(protocol)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", True)


@pytest.mark.parametrize(
    "error_frame",
    [
        {"error": {"code": 500, "message": "CUDA out of memory", "type": "server_error"}},
        {"error": "CUDA out of memory", "error_type": "generation"},
    ],
)
async def test_it_reports_an_error_object_in_the_stream(engine_wire, protocol, error_frame):
    mock_generation(engine_wire, protocol, Body([sse(token_frame(protocol, "a"), error_frame)]))

    outcome = await collect(protocol)

    assert outcome.tokens == ["a"]
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", False)
    assert "CUDA out of memory" in outcome.error.message


async def test_it_reports_an_error_line_of_older_servers(engine_wire, protocol):
    mock_generation(engine_wire, protocol, Body([b'error: {"message": "slot unavailable"}\n\n']))

    outcome = await collect(protocol)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", True)
    assert "slot unavailable" in outcome.error.message


async def test_it_refuses_a_workload_it_does_not_serve(respx_mock, protocol):
    outcome = await collect(protocol, workload="rerank", inputs=("q", "d"))

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("INVALID_PARAMS", True)


async def test_tokens_that_arrived_before_the_cut_are_relayed_even_when_read_after_it(engine_wire, protocol):
    # The caller is slow after the first token: the second token and the cut both arrive
    # before the adapter reads again (aiohttp would raise, dropping what it buffered).
    first, second = (generation(protocol, [text], final=False) for text in ("a", "b"))
    mock_generation(engine_wire, protocol, Body([first, second], fail=True))
    tokens: list[str] = []
    error: EngineError | None = None

    try:
        async for event in adapter_for(ENGINES[protocol]).stream(request()):
            if isinstance(event, Token):
                tokens.append(event.text)
                await asyncio.sleep(0.2)
    except EngineError as exc:
        error = exc

    assert tokens == ["a", "b"]
    assert error is not None
    assert (error.code, error.before_first_token) == ("WORKER_RESET", False)
