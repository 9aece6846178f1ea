"""One shared HTTP client of each kind per event loop; a client is never reused on another loop.

aiohttp carries the generations, httpx the probes.
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx

from orchestrator.engines import http
from orchestrator.engines.http import aclose_clients, engine_client, stream_session


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


async def test_it_shares_one_stream_session_within_a_loop():
    assert stream_session() is stream_session()


def test_it_gives_each_loop_its_own_stream_session():
    async def session_and_loop() -> tuple[aiohttp.ClientSession, asyncio.AbstractEventLoop]:
        session = stream_session()
        await aclose_clients()  # closed with its loop, as at shutdown
        return session, asyncio.get_running_loop()

    first, first_loop = asyncio.run(session_and_loop())
    second, _ = asyncio.run(session_and_loop())

    assert first is not second
    assert all(loop is not first_loop for loop, _ in http._sessions)


async def test_it_replaces_a_stream_session_closed_at_shutdown():
    session = stream_session()

    await aclose_clients()

    assert session.closed
    assert stream_session() is not session


async def test_streams_connect_within_5_s_and_read_without_a_time_limit():
    timeout = stream_session().timeout

    assert (timeout.sock_connect, timeout.total, timeout.sock_read) == (5.0, None, None)
