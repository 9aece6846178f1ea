"""One shared HTTP client per event loop; a client is never reused on another loop."""

from __future__ import annotations

import asyncio

import httpx

from orchestrator.engines import http
from orchestrator.engines.http import aclose_clients, engine_client


async def test_it_shares_one_client_within_a_loop():
    assert engine_client() is engine_client()


def test_it_gives_each_loop_its_own_client():
    async def client_and_loop() -> tuple[httpx.AsyncClient, asyncio.AbstractEventLoop]:
        return engine_client(), asyncio.get_running_loop()

    first, first_loop = asyncio.run(client_and_loop())
    second, second_loop = asyncio.run(client_and_loop())

    assert first is not second
    assert first_loop.is_closed()
    assert first_loop not in http._clients


async def test_it_replaces_a_client_closed_at_shutdown():
    client = engine_client()

    await aclose_clients()

    assert client.is_closed
    assert engine_client() is not client


async def test_it_connects_within_5_s_and_reads_without_a_time_limit():
    client = engine_client()

    assert client.timeout == httpx.Timeout(connect=5.0, read=None, write=None, pool=None)
