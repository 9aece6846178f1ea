"""Small readers for the engines' wire formats, so tests state behaviour rather than parsing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.engines import RunningEngine

DONE = "[DONE]"


async def stats_reach(client: httpx.AsyncClient, engine: RunningEngine, **expected: int) -> dict[str, int]:
    """Poll the engine's counters without blocking the event loop; the last reading after ~5 s."""
    stats: dict[str, int] = {}
    for _ in range(500):
        stats = (await client.get(f"{engine.url}/_fake/stats")).json()
        if all(stats.get(key) == value for key, value in expected.items()):
            break
        await asyncio.sleep(0.01)
    return stats


def sse_data(body: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    return [line.removeprefix("data:").strip() for line in body.splitlines() if line.startswith("data:")]


def sse_json(body: str) -> list[Any]:
    return [json.loads(data) for data in sse_data(body) if data != DONE]


def generate_request(protocol: str, prompt: str, *, max_tokens: int, seed: int | None = None, stream: bool = False):
    """(path, body) of a plain generation request in the protocol's own shape."""
    if protocol == "llamacpp":
        return "/completion", {"prompt": prompt, "n_predict": max_tokens, "seed": seed, "stream": stream}
    if protocol == "openai":
        # No "model": like vLLM, the engine then serves its only model.
        return "/v1/completions", {"prompt": prompt, "max_tokens": max_tokens, "seed": seed, "stream": stream}
    parameters = {"max_new_tokens": max_tokens, "seed": seed, "details": True}
    return ("/generate_stream" if stream else "/generate"), {"inputs": prompt, "parameters": parameters}


def complete(engine: RunningEngine, prompt: str, *, max_tokens: int, seed: int | None = None) -> tuple[str, str]:
    """(text, finish reason as the engine spells it) of a non-streaming request."""
    path, body = generate_request(engine.protocol, prompt, max_tokens=max_tokens, seed=seed)
    response = httpx.post(engine.url + path, json=body, timeout=10)
    response.raise_for_status()
    answer = response.json()
    if engine.protocol == "llamacpp":
        return answer["content"], answer["stop_type"]
    if engine.protocol == "openai":
        return answer["choices"][0]["text"], answer["choices"][0]["finish_reason"]
    return answer["generated_text"], answer["details"]["finish_reason"]


def stream_texts(protocol: str, body: str) -> tuple[list[str], bool]:
    """Token texts of a streamed body, and whether its terminal frame arrived."""
    frames = sse_json(body)
    if protocol == "llamacpp":
        return [f["content"] for f in frames if not f["stop"]], any(f["stop"] for f in frames)
    if protocol == "openai":
        texts = [c["text"] for f in frames for c in f["choices"] if c["finish_reason"] is None]
        return texts, DONE in sse_data(body)
    tokens = [f["token"]["text"] for f in frames if not f["token"]["special"] and f["generated_text"] is None]
    return tokens, any(f["generated_text"] is not None for f in frames)
