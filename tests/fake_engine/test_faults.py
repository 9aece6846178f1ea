"""Injected faults, per request with a `[[fault:...]]` marker or for every request with --fault."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fake_engine.wire import generate_request, sse_json, stream_texts

pytestmark = pytest.mark.integration

ERROR_SHAPES = {
    "llamacpp": lambda body, status: body["error"]["code"] == status and body["error"]["message"],
    "openai": lambda body, status: body["error"]["code"] == status and body["error"]["type"],
    "tgi": lambda body, status: body["error"] and body["error_type"],
}


@pytest.fixture(params=["llamacpp", "openai", "tgi"])
def engine(request):
    return request.getfixturevalue(request.param)


async def test_die_after_drops_the_connection_without_a_terminal_frame(engine):
    # given
    path, body = generate_request(engine.protocol, "[[fault:die_after=3]] hi", max_tokens=10, stream=True)
    received: list[str] = []

    # when
    async with httpx.AsyncClient(timeout=10) as client, client.stream("POST", engine.url + path, json=body) as r:
        with pytest.raises(httpx.RemoteProtocolError):
            await _read_lines(r, received)

    # then
    tokens, ended = stream_texts(engine.protocol, "\n".join(received))
    assert len(tokens) == 3
    assert not ended
    stats = engine.wait_for_stats(aborted=1, active=0)
    assert (stats["aborted"], stats["completed"], stats["active"]) == (1, 0, 0)


async def test_stall_after_goes_quiet_until_the_client_leaves(engine):
    # given
    path, body = generate_request(engine.protocol, "[[fault:stall_after=2]] hi", max_tokens=10, stream=True)
    buffer = b""

    async with httpx.AsyncClient(timeout=10) as client, client.stream("POST", engine.url + path, json=body) as r:
        chunks = r.aiter_raw()
        while len(stream_texts(engine.protocol, buffer.decode())[0]) < 2:
            buffer += await anext(chunks)

        # when / then: nothing more comes
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(chunks), timeout=1.2)

    # and the engine notices the client going away and frees the slot
    stats = engine.wait_for_stats(client_disconnects=1, active=0)
    assert (stats["client_disconnects"], stats["active"], stats["completed"]) == (1, 0, 0)


@pytest.mark.parametrize("status", [500, 503])
def test_status_answers_with_that_status_before_any_token(engine, status):
    path, body = generate_request(engine.protocol, f"[[fault:status={status}]] hi", max_tokens=5, stream=True)

    response = httpx.post(engine.url + path, json=body)

    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert ERROR_SHAPES[engine.protocol](response.json(), status)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "body"])
async def test_split_utf8_cuts_a_character_across_network_writes(engine, stream):
    # given: the default text has "naïve" within its first twelve tokens
    path, body = generate_request(engine.protocol, "[[fault:split_utf8]] hi", max_tokens=12, seed=0, stream=stream)
    _, plain = generate_request(engine.protocol, "hi", max_tokens=12, seed=0, stream=stream)

    # when
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("POST", engine.url + path, json=body) as response:
            chunks = [chunk async for chunk in response.aiter_raw()]
        expected = (await client.post(engine.url + path, json=plain)).text

    # then
    assert any(_splits_a_character(chunk) for chunk in chunks)
    assert any(not chunk.endswith(b"\n\n") for chunk in chunks)
    assert _comparable(b"".join(chunks).decode(), stream) == _comparable(expected, stream)


def test_cli_faults_apply_to_every_request_unless_a_marker_clears_them(fake_engine):
    engine = fake_engine("openai", fault="status=500")

    failing = httpx.post(f"{engine.url}/v1/completions", json={"prompt": "hi", "max_tokens": 2})
    cleared = httpx.post(f"{engine.url}/v1/completions", json={"prompt": "[[fault:none]] hi", "max_tokens": 2})

    assert failing.status_code == 500
    assert cleared.status_code == 200
    assert cleared.json()["usage"]["prompt_tokens"] == 1


def test_a_malformed_marker_is_refused(llamacpp):
    response = httpx.post(f"{llamacpp.url}/completion", json={"prompt": "[[fault:explode=1]] hi"})

    assert response.status_code == 400
    assert "explode" in response.json()["error"]["message"]


async def _read_lines(response: httpx.Response, into: list[str]) -> None:
    async for line in response.aiter_lines():
        into.append(line)


def _splits_a_character(chunk: bytes) -> bool:
    try:
        chunk.decode()
    except UnicodeDecodeError:
        return True
    return False


def _comparable(body: str, stream: bool) -> object:
    """The body without what legitimately differs between two requests (ids, timings, prompts)."""
    frames = sse_json(body) if stream else [httpx.Response(200, text=body).json()]
    volatile = {"id", "id_slot", "created", "timings", "prompt", "usage", "tokens_evaluated"}
    volatile |= {"generation_settings", "details"}
    return [{k: v for k, v in frame.items() if k not in volatile} for frame in frames]
