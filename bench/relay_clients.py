"""httpx or aiohttp on the relay path: the same streams read by each client, CPU per token compared.

Each client runs in a process of its own (so its CPU time is its own), reads
`streams` concurrent generations from the fake engine with the adapters' own
SSE parser and JSON decoding, and reports tokens/s and CPU time per token.
Run as a module, it measures one client:

    python -m bench.relay_clients httpx URL STREAMS MAX_TOKENS
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

from orchestrator.engines.sse import SSEParser

CLIENTS = ("httpx", "aiohttp")


def _tokens(parser: SSEParser, chunk: bytes) -> int:
    count = 0
    for field in parser.feed(chunk):
        if field.is_data and not field.is_done:
            choices = json.loads(field.value).get("choices") or []
            count += bool(choices and choices[0].get("text"))
    return count


def _body(max_tokens: int) -> dict[str, Any]:
    return {"model": "bench-model", "prompt": "x", "max_tokens": max_tokens, "stream": True}


async def _with_httpx(url: str, streams: int, max_tokens: int) -> int:
    # As orchestratord configured it before the switch (orchestrator/engines/http.py).
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=30.0)
    timeout = httpx.Timeout(connect=5.0, read=None, write=None, pool=None)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:

        async def one() -> int:
            count, parser = 0, SSEParser()
            async with client.stream("POST", f"{url}/v1/completions", json=_body(max_tokens)) as response:
                async for chunk in response.aiter_bytes():
                    count += _tokens(parser, chunk)
            return count

        return sum(await asyncio.gather(*(one() for _ in range(streams))))


async def _with_aiohttp(url: str, streams: int, max_tokens: int) -> int:
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:

        async def one() -> int:
            count, parser = 0, SSEParser()
            async with session.post(f"{url}/v1/completions", json=_body(max_tokens)) as response:
                while chunk := await response.content.readany():
                    count += _tokens(parser, chunk)
            return count

        return sum(await asyncio.gather(*(one() for _ in range(streams))))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class ClientRun:
    client: str
    tokens_per_s: float
    cpu_us_per_token: float
    cpu_share: float


def measure(client: str, url: str, streams: int, max_tokens: int) -> ClientRun:
    """One run of `client` in a fresh process."""
    argv = [sys.executable, "-m", "bench.relay_clients", client, url, str(streams), str(max_tokens)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return ClientRun(**json.loads(out))


def main() -> None:
    client, url, streams, max_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    run = _with_httpx if client == "httpx" else _with_aiohttp
    asyncio.run(run(url, 8, 4))  # warm up: imports, first connections
    started, cpu = time.perf_counter(), _cpu_s()
    tokens = asyncio.run(run(url, streams, max_tokens))
    elapsed, cpu = time.perf_counter() - started, _cpu_s() - cpu
    print(
        json.dumps(
            {
                "client": client,
                "tokens_per_s": tokens / elapsed,
                "cpu_us_per_token": cpu * 1e6 / tokens,
                "cpu_share": cpu / elapsed,
            }
        )
    )


if __name__ == "__main__":
    main()
