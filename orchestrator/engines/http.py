"""The HTTP clients every engine adapter shares: one of each per process and event loop.

Generations (the token streams, the hot path) go through aiohttp: measured
at 200 concurrent streams, httpx spent 1.6 to 2.6 times the CPU per token
(docs/performance.md). Probes (health, version: small GETs, a few per
minute) stay on httpx.

A client's pooled connections belong to the loop that opened them, so a
client is never handed to another loop, and one whose loop has closed is
dropped rather than reused (tests and management commands run many loops).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp
import httpx

# Connecting to an engine is local-network work: 5 s means it is down (SPEC §11).
CONNECT_TIMEOUT_S = 5.0
# No read, write or pool timeout here: a generation may legitimately last
# minutes, so adapters bound each wait by the first-token and idle timeouts.
_TIMEOUT = httpx.Timeout(connect=CONNECT_TIMEOUT_S, read=None, write=None, pool=None)
# One stream per task in flight on this process; keep-alive connections are
# reused by the next task on the same engine (one per slot is plenty).
_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=30.0)

_clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
# Per loop, one session that keeps connections for the next task and one that does not.
_sessions: dict[tuple[asyncio.AbstractEventLoop, bool], aiohttp.ClientSession] = {}
# For the streams: a socket connect within 5 s, and no other limit (see above). No cap on
# connections either: each stream holds one, and streams are bounded by the pools' slots.
_STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S)
_KEEPALIVE_S = 30.0


@dataclass
class Sending:
    """One request on a stream session (its `trace_request_ctx`): whether it went out on a kept connection."""

    reused: bool = False


async def _note_reuse(session: aiohttp.ClientSession, context: SimpleNamespace, params: object) -> None:
    if isinstance(context.trace_request_ctx, Sending):
        context.trace_request_ctx.reused = True


_REUSE = aiohttp.TraceConfig()
_REUSE.on_connection_reuseconn.append(_note_reuse)


def stream_session(keep_alive: bool = True) -> aiohttp.ClientSession:
    """The shared aiohttp session of the running event loop, for generations (created on first use).

    `keep_alive=False`: a session whose connections serve one request each, for engines
    that close a connection after a streamed answer while announcing keep-alive.
    """
    loop = asyncio.get_running_loop()
    session = _sessions.get((loop, keep_alive))
    if session is None or session.closed:
        _forget_closed_loops()
        if keep_alive:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=_KEEPALIVE_S)
        else:
            connector = aiohttp.TCPConnector(limit=0, force_close=True)
        # trust_env=False, as for httpx below; no decompression: engines stream plain text/event-stream.
        # Requests tell whether they went out on a kept connection (`Sending`).
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=_STREAM_TIMEOUT,
            trust_env=False,
            auto_decompress=False,
            trace_configs=[_REUSE] if keep_alive else None,
        )
        _sessions[loop, keep_alive] = session
    return session


def engine_client() -> httpx.AsyncClient:
    """The shared client of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        _forget_closed_loops()
        client = _new_client()
        _clients[loop] = client
    return client


async def aclose_clients() -> None:
    """Close the running loop's clients (at shutdown); clients of closed loops are only forgotten."""
    _forget_closed_loops()
    loop = asyncio.get_running_loop()
    client = _clients.pop(loop, None)
    if client is not None:
        await client.aclose()
    for keep_alive in (True, False):
        session = _sessions.pop((loop, keep_alive), None)
        if session is not None:
            await session.close()


def _new_client() -> httpx.AsyncClient:
    # trust_env=False: engines sit on the cluster network; an HTTP(S)_PROXY meant
    # for the outside world must not capture token streams.
    return httpx.AsyncClient(timeout=_TIMEOUT, limits=_LIMITS, http1=True, http2=False, trust_env=False)


def _forget_closed_loops() -> None:
    # Their sockets cannot be closed from here (the loop is gone); the garbage collector frees them.
    for loop in [loop for loop in _clients if loop.is_closed()]:
        del _clients[loop]
    for key in [key for key in _sessions if key[0].is_closed()]:
        del _sessions[key]
