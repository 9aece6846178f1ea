"""Slots: at most N generations at once; the rest queue (`--busy queue`) or get a 503 (`--busy 503`)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.fake_engine.wire import generate_request, sse_json, stats_reach

pytestmark = pytest.mark.integration


async def test_it_runs_at_most_n_generations_and_queues_the_rest(fake_engine):
    # given
    engine = fake_engine("llamacpp", slots=2, tokens_per_s=100)
    url = f"{engine.url}/completion"

    # when
    async with httpx.AsyncClient(timeout=10) as client:

        async def generate():
            response = await client.post(url, json={"prompt": "hi", "n_predict": 10, "stream": True})
            return sse_json(response.text)[-1]

        tasks = [asyncio.create_task(generate()) for _ in range(5)]
        assert (await stats_reach(client, engine, queued=3))["queued"] == 3
        finals = await asyncio.gather(*tasks)

    # then
    assert all(final["stop"] is True and final["tokens_predicted"] == 10 for final in finals)
    stats = engine.wait_for_stats(completed=5)
    assert (stats["max_active_seen"], stats["requests"], stats["completed"]) == (2, 5, 5)
    assert stats["active"] == stats["queued"] == 0


BUSY_SHAPES = {
    "llamacpp": lambda body: body["error"]["code"] == 503 and body["error"]["type"] == "unavailable_error",
    "openai": lambda body: body["error"]["code"] == 503 and body["error"]["message"],
    "tgi": lambda body: body["error_type"] == "overloaded" and body["error"],
}


@pytest.mark.parametrize("protocol", ["llamacpp", "openai", "tgi"])
async def test_it_answers_503_when_every_slot_is_taken_and_told_not_to_queue(fake_engine, protocol):
    # given: one slot, held by a stream that stalls after its first token
    engine = fake_engine(protocol, slots=1, busy="503")
    path, holding_body = generate_request(protocol, "[[fault:stall_after=1]] hi", max_tokens=5, stream=True)
    refused_path, body = generate_request(protocol, "hi", max_tokens=2)

    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("POST", engine.url + path, json=holding_body) as holding:
            chunks = holding.aiter_raw()  # keep a reference: a collected iterator closes the stream
            await anext(chunks)

            # when
            refused = await client.post(engine.url + refused_path, json=body)

        # then
        assert refused.status_code == 503
        assert BUSY_SHAPES[protocol](refused.json())
        stats = engine.wait_for_stats(active=0)
        assert (stats["rejected"], stats["active"]) == (1, 0)
        accepted = await client.post(engine.url + refused_path, json=body)
        assert accepted.status_code == 200
