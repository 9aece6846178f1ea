"""The adapters against the real fake engine process, over loopback, for every protocol."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import pytest

from orchestrator.engines import adapter_for
from orchestrator.engines.base import EngineError, EngineEvent, EngineRequest, Finished, Token, Vectors
from tests.engines import RunningEngine
from tests.engines_adapters.conftest import MODEL
from tests.engines_adapters.wire import ENGINES, Outcome

pytestmark = pytest.mark.integration

# Slow enough that a generation is still running when the test acts on it.
SLOW = "[[fault:tps=20]]"


def task(engine: RunningEngine, prompt: str = "Say something", **fields: Any) -> EngineRequest:
    defaults: dict[str, Any] = {"workload": "completion", "max_tokens": 24, "seed": 5, "model_ref": MODEL}
    return EngineRequest(task_id="t-1", engine_url=engine.url, prompt=prompt, **defaults | fields)


async def run(engine: RunningEngine, req: EngineRequest) -> Outcome:
    events = []
    try:
        async for event in adapter_for(ENGINES[engine.protocol]).stream(req):
            events.append(event)
    except EngineError as exc:
        return Outcome(events, exc)
    return Outcome(events, None)


async def whole_text(engine: RunningEngine, prompt: str, *, max_tokens: int, seed: int) -> str:
    """The same generation, not streamed, in the engine's own protocol."""
    async with httpx.AsyncClient(base_url=engine.url, timeout=10) as client:
        if engine.protocol == "llamacpp":
            answer = await client.post("/completion", json={"prompt": prompt, "n_predict": max_tokens, "seed": seed})
            return str(answer.json()["content"])
        if engine.protocol == "openai":
            body = {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "seed": seed}
            answer = await client.post("/v1/completions", json=body)
            return str(answer.json()["choices"][0]["text"])
        body = {"inputs": prompt, "parameters": {"max_new_tokens": max_tokens, "seed": seed}}
        answer = await client.post("/generate", json=body)
        return str(answer.json()["generated_text"])


async def stats_reach(engine: RunningEngine, within_s: float = 5.0, **expected: int) -> dict[str, int]:
    # In a thread: the event loop must keep running to close our side of the connection.
    return await asyncio.to_thread(engine.wait_for_stats, within_s, **expected)


async def test_it_streams_the_text_the_engine_generates(engine):
    outcome = await run(engine, task(engine, max_tokens=24))

    assert outcome.error is None
    assert outcome.text == await whole_text(engine, "Say something", max_tokens=24, seed=5)
    assert len(outcome.tokens) == 24
    assert outcome.finished is not None
    assert (outcome.finished.finish_reason, outcome.finished.tokens_out) == ("length", 24)
    assert outcome.finished.tokens_in == 2


async def test_it_relays_characters_the_engine_splits_across_writes(engine):
    outcome = await run(engine, task(engine, "[[fault:split_utf8]] Say something", max_tokens=30))

    assert outcome.error is None
    assert outcome.text == await whole_text(engine, "Say something", max_tokens=30, seed=5)
    assert "é" in outcome.text
    assert "\ufffd" not in outcome.text


async def test_it_reports_an_engine_that_dies_mid_stream(engine):
    outcome = await run(engine, task(engine, "[[fault:die_after=3]] go"))

    assert len(outcome.tokens) == 3
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", False)


async def test_it_times_out_a_stalled_stream_and_frees_the_engine_slot(engine):
    outcome = await run(engine, task(engine, "[[fault:stall_after=2]] go", idle_timeout_s=0.5))

    assert len(outcome.tokens) == 2
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("DECODE_TIMEOUT", False)
    stats = await stats_reach(engine, active=0, client_disconnects=1)
    assert (stats["active"], stats["client_disconnects"]) == (0, 1)


async def test_it_reports_an_unavailable_engine_before_any_token(engine):
    outcome = await run(engine, task(engine, "[[fault:status=503]] go"))

    assert outcome.events == []
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token, outcome.error.status) == ("WORKER_RESET", True, 503)


async def test_it_reports_a_refused_request_as_invalid_params(engine):
    outcome = await run(engine, task(engine, "[[fault:status=422]] go"))

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token, outcome.error.status) == ("INVALID_PARAMS", True, 422)


async def test_it_frees_the_engine_slot_when_the_stream_is_closed(engine):
    # given: a generation in progress
    stream = adapter_for(ENGINES[engine.protocol]).stream(task(engine, SLOW + " go", max_tokens=200))
    assert isinstance(await anext(stream), Token)

    # when
    await stream.aclose()

    # then: the engine sees the disconnect and frees the slot within a second
    closed = time.monotonic()
    stats = await stats_reach(engine, within_s=1.0, active=0, client_disconnects=1)
    assert (stats["active"], stats["client_disconnects"], stats["completed"]) == (0, 1, 0)
    assert time.monotonic() - closed < 3.0  # promptly (generous for loaded CI machines)


async def test_it_frees_the_engine_slot_when_cancelled_from_another_task(engine):
    adapter = adapter_for(ENGINES[engine.protocol])
    first = asyncio.Event()

    async def consume() -> list[EngineEvent]:
        events = []
        async for event in adapter.stream(task(engine, SLOW + " go", max_tokens=200)):
            events.append(event)
            first.set()
        return events

    consumer = asyncio.create_task(consume())
    await first.wait()
    await adapter.cancel()

    events = await asyncio.wait_for(consumer, 1.0)
    assert 1 <= len(events) < 200
    assert not any(isinstance(event, Finished) for event in events)
    stats = await stats_reach(engine, within_s=1.0, active=0, client_disconnects=1)
    assert (stats["active"], stats["client_disconnects"]) == (0, 1)


async def test_it_reuses_the_connection_after_a_complete_stream(engine):
    for _ in range(3):
        outcome = await run(engine, task(engine, max_tokens=4))
        assert outcome.error is None

    stats = await stats_reach(engine, completed=3)
    assert (stats["completed"], stats["client_disconnects"]) == (3, 0)


async def test_it_reports_health_and_version(engine):
    adapter = adapter_for(ENGINES[engine.protocol])

    assert await adapter.health(engine.url) is True
    assert await adapter.engine_version(engine.url) == {"llamacpp": "b6500-fake", "openai": "0.11.0+fake"}.get(
        engine.protocol, "3.3.6-fake"
    )


async def test_it_embeds_texts(engine):
    if engine.protocol == "tgi":
        pytest.skip("TGI serves no embeddings")
    req = task(engine, workload="embedding", inputs=("a cat", "a dog", "a cat"))

    outcome = await run(engine, req)

    assert outcome.error is None
    (vectors,) = outcome.events
    assert isinstance(vectors, Vectors)
    assert len(vectors.embeddings) == 3
    assert all(len(vector) == 16 for vector in vectors.embeddings)
    assert vectors.embeddings[0] == vectors.embeddings[2] != vectors.embeddings[1]


@pytest.mark.parametrize("protocol", ["llamacpp", "openai", "tgi"])
async def test_it_reports_a_refused_connection_before_any_token(protocol):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    req = EngineRequest(task_id="t", engine_url=url, workload="completion", model_ref="m", max_tokens=4)

    with pytest.raises(EngineError) as failure:
        await anext(adapter_for(ENGINES[protocol]).stream(req))

    assert (failure.value.code, failure.value.before_first_token) == ("WORKER_RESET", True)
    assert await adapter_for(ENGINES[protocol]).health(url) is False


async def test_it_leaves_the_engine_queue_when_cancelled_before_the_first_token(fake_engine):
    # given: the only slot is busy, so the next request waits in the engine's queue
    engine = fake_engine("llamacpp", slots=1, tokens_per_s=20)
    busy = adapter_for("llamacpp").stream(task(engine, max_tokens=200))
    assert isinstance(await anext(busy), Token)
    waiting = adapter_for("llamacpp")
    consumer = asyncio.create_task(anext(waiting.stream(task(engine)), None))
    await stats_reach(engine, queued=1)

    # when
    await waiting.cancel()

    # then
    assert await asyncio.wait_for(consumer, 1.0) is None
    stats = await stats_reach(engine, within_s=1.0, queued=0, client_disconnects=1)
    assert (stats["queued"], stats["client_disconnects"], stats["active"]) == (0, 1, 1)
    await busy.aclose()


async def test_it_times_out_waiting_in_the_engine_queue_before_the_first_token(fake_engine):
    engine = fake_engine("openai", slots=1, tokens_per_s=20, model=MODEL)
    busy = adapter_for("vllm").stream(task(engine, max_tokens=200))
    assert isinstance(await anext(busy), Token)

    outcome = await run(engine, task(engine, first_token_timeout_s=0.3))

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("DECODE_TIMEOUT", True)
    stats = await stats_reach(engine, within_s=1.0, queued=0, client_disconnects=1)
    assert (stats["queued"], stats["client_disconnects"]) == (0, 1)
    await busy.aclose()
