"""Closing the stream, or cancel() from another task, closes the engine connection at once."""

from __future__ import annotations

import asyncio

from orchestrator.engines import adapter_for
from orchestrator.engines.base import EngineEvent, Token
from tests.engines_adapters.wire import ENGINES, Body, generation, mock_generation, request, sse, token_frame


async def test_it_closes_the_response_when_the_stream_is_closed(engine_wire):
    body = Body([generation("llamacpp", ["a", "b", "c"], final=False)], stall_s=30)
    mock_generation(engine_wire, "llamacpp", body)
    stream = adapter_for("llamacpp").stream(request())

    assert await anext(stream) == Token("a")
    await stream.aclose()

    assert await body.wait_closed()


async def test_it_ends_quietly_when_cancelled_while_waiting_for_the_engine(engine_wire):
    # given: a stream blocked on an engine that went quiet after one token
    body = Body([sse(token_frame("tgi", "a"))], stall_s=30)
    mock_generation(engine_wire, "tgi", body)
    adapter = adapter_for(ENGINES["tgi"])
    first = asyncio.Event()

    async def consume() -> list[EngineEvent]:
        events = []
        async for event in adapter.stream(request()):
            events.append(event)
            first.set()
        return events

    consumer = asyncio.create_task(consume())
    await first.wait()

    # when
    async with asyncio.timeout(1):
        await adapter.cancel()
        events = await consumer

    # then
    assert events == [Token("a")]
    assert await body.wait_closed()


async def test_it_ends_quietly_when_cancelled_while_waiting_for_response_headers(engine_wire):
    route = mock_generation(engine_wire, "openai", Body([])).hang()
    adapter = adapter_for("vllm")
    consumer = asyncio.create_task(anext(adapter.stream(request()), None))
    await route.wait_called()  # the engine has the request, and answers nothing

    async with asyncio.timeout(1):
        await adapter.cancel()
        assert await consumer is None


async def test_it_closes_the_response_when_cancelled_between_two_reads(engine_wire):
    # given: the caller holds a token and has not asked for the next one
    body = Body([generation("llamacpp", ["a", "b"], final=False)], stall_s=30)
    mock_generation(engine_wire, "llamacpp", body)
    adapter = adapter_for("llamacpp")
    stream = adapter.stream(request())
    assert await anext(stream) == Token("a")

    # when
    await adapter.cancel()

    # then: the connection is closed at once, and the stream ends at the next read
    assert await body.wait_closed()
    assert await anext(stream, None) is None


async def test_it_sends_nothing_when_cancelled_before_it_starts(engine_wire):
    route = mock_generation(engine_wire, "llamacpp", Body([generation("llamacpp", ["a"])]))
    adapter = adapter_for("llamacpp")

    await adapter.cancel()
    events = [event async for event in adapter.stream(request())]

    assert events == []
    assert not route.called


async def test_it_closes_the_response_when_the_consuming_task_is_cancelled(engine_wire):
    body = Body([sse(token_frame("openai", "a"))], stall_s=30)
    mock_generation(engine_wire, "openai", body)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in adapter_for("vllm").stream(request()):
            first.set()

    consumer = asyncio.create_task(consume())
    await first.wait()
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)

    assert await body.wait_closed()
