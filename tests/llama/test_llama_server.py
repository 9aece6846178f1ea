"""The real llama.cpp llama-server on tiny random-weight GGUF models: the ground the engine tests stand on."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engines import adapter_for
from orchestrator.engines.base import EngineError, EngineRequest
from orchestrator.engines.http import aclose_clients
from tests.support.gguf_model import TINY_VOCAB
from tests.support.llama import LlamaServer, make_tiny_gguf, run_llama_server

pytestmark = pytest.mark.integration

# Ids below this are <unk>, <s>, </s> and the 256 byte-fallback tokens, which the model must avoid.
FIRST_PIECE_ID = TINY_VOCAB.index("<0xFF>") + 1


def stream_completion(server: LlamaServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST /completion with stream=true; the decoded `data:` frames, in order."""
    frames: list[dict[str, Any]] = []
    with (
        server.client() as client,
        client.stream("POST", "/completion", json={**body, "stream": True}) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                continue
            assert line.startswith("data: "), line
            frames.append(json.loads(line.removeprefix("data: ")))
    return frames


def complete(server: LlamaServer, **body: Any) -> str:
    with server.client() as client:
        response = client.post("/completion", json={"stream": False, **body})
    assert response.status_code == 200, response.text
    return str(response.json()["content"])


def test_tiny_gguf_is_small_quick_and_seeded(tmp_path: Path) -> None:
    started = time.perf_counter()
    path = make_tiny_gguf(tmp_path / "a.gguf", seed=0)
    elapsed = time.perf_counter() - started
    print(f"tiny GGUF: {path.stat().st_size} bytes written in {elapsed * 1000:.0f} ms")

    assert path.stat().st_size < 1_000_000
    assert path.read_bytes()[:4] == b"GGUF"
    again = make_tiny_gguf(tmp_path / "b.gguf", seed=0)
    other = make_tiny_gguf(tmp_path / "c.gguf", seed=1)
    assert again.read_bytes() == path.read_bytes()
    assert other.read_bytes() != path.read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


def test_server_loads_the_model_and_reports_slots(llama_server: LlamaServer) -> None:
    with llama_server.client() as client:
        health = client.get("/health")
        props = client.get("/props")
        slots = client.get("/slots")
        models = client.get("/v1/models")

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}

    assert props.status_code == 200
    body = props.json()
    assert Path(body["model_path"]) == llama_server.model
    assert body["total_slots"] == 2
    assert body["default_generation_settings"]["n_ctx"] == 512

    assert slots.status_code == 200
    entries = slots.json()
    assert [s["id"] for s in entries] == [0, 1]
    assert all(s["n_ctx"] == 512 and s["is_processing"] is False for s in entries)

    assert models.status_code == 200
    assert models.json()["data"][0]["id"]


def test_streamed_completion_is_valid_utf8_ending_with_stats(llama_server: LlamaServer) -> None:
    frames = stream_completion(llama_server, {"prompt": "the model server", "n_predict": 16, "seed": 1})

    *pieces, last = frames
    assert pieces, "no content frames before the final one"
    assert all(f["stop"] is False for f in pieces)
    text = "".join(f["content"] for f in frames)
    assert text.strip()
    assert "\ufffd" not in text
    text.encode("utf-8")  # no lone surrogates either
    tokens = [t for f in pieces for t in f.get("tokens", [])]
    assert tokens
    assert all(t >= FIRST_PIECE_ID for t in tokens), "byte or control token generated"

    assert last["stop"] is True
    assert last["tokens_predicted"] == 16
    assert last["stop_type"] == "limit"
    timings = last["timings"]
    assert timings["predicted_n"] == 16
    assert timings["predicted_ms"] > 0
    print(f"{timings['predicted_per_second']:.0f} tokens/s on 1 slot; text {text!r}")


def test_same_seed_same_text_and_greedy_is_repeatable(llama_server: LlamaServer) -> None:
    greedy = {"prompt": "one two three", "n_predict": 16, "temperature": 0, "seed": 1}
    assert complete(llama_server, **greedy) == complete(llama_server, **greedy)

    sampled = {"prompt": "one two three", "n_predict": 16, "temperature": 1.0, "seed": 7}
    assert complete(llama_server, **sampled) == complete(llama_server, **sampled)


def test_two_slots_decode_at_once(llama_server_binary: Path, tiny_model_factory: Any) -> None:
    # The tiny model decodes ~10k tokens/s, so each request is made long (~1500 tokens) to be sure
    # the two overlap: the second then finds slot 0 or 1 busy and takes the other one.
    model = tiny_model_factory(seed=0, name="long", context_length=2048)
    body = {"prompt": "a b c", "n_predict": 1500, "temperature": 0, "stream": False}
    barrier = threading.Barrier(2)

    def one(_: int) -> dict[str, Any]:
        with server.client() as client:
            barrier.wait(10)
            response = client.post("/completion", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    with run_llama_server(model, slots=2, ctx=2048, binary=llama_server_binary) as server:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = list(pool.map(one, range(2)))
        assert server.process.poll() is None
    assert sorted(r["id_slot"] for r in results) == [0, 1]
    assert all(r["tokens_predicted"] == 1500 for r in results)
    assert results[0]["content"] == results[1]["content"]  # batching two slots changes nothing


def test_models_of_two_seeds_differ(llama_server_binary: Path, tiny_model_factory: Any) -> None:
    texts = []
    for seed in (0, 1):
        model = tiny_model_factory(seed=seed)
        with run_llama_server(model, slots=1, binary=llama_server_binary) as server:
            with server.client() as client:
                assert Path(client.get("/props").json()["model_path"]) == model
            texts.append(complete(server, prompt="the", n_predict=16, temperature=0))
    assert texts[0] != texts[1]


def test_embeddings(llama_server_binary: Path, tiny_model_factory: Any) -> None:
    model = tiny_model_factory(seed=0)
    args = ["--embeddings", "--pooling", "mean"]
    with run_llama_server(model, slots=1, binary=llama_server_binary, extra_args=args) as server:
        with server.client() as client:
            response = client.post("/v1/embeddings", json={"input": ["hello world", "the server"]})
        if response.status_code == 501:
            pytest.skip(f"this llama-server cannot embed with the tiny model: {response.text}")
        assert response.status_code == 200, response.text
        data = response.json()["data"]
    assert len(data) == 2
    assert all(len(d["embedding"]) == 64 for d in data)
    assert data[0]["embedding"] != data[1]["embedding"]


def test_it_closes_the_connection_after_a_streamed_answer_though_it_announces_keep_alive(
    llama_server: LlamaServer,
) -> None:
    # Why the llama.cpp adapter keeps no connection for the next task (orchestrator/engines/llamacpp.py).
    host, port = llama_server.url.removeprefix("http://").split(":")
    body = json.dumps({"prompt": "hi", "n_predict": 4, "stream": True}).encode()
    head = f"POST /completion HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        answer, closed = b"", False
        while not (b'"stop":true' in answer and answer.endswith(b"\r\n0\r\n\r\n")):  # the last frame, the last chunk
            answer += sock.recv(65536)
        sock.settimeout(2)
        try:
            closed = sock.recv(1) == b""  # the server closes the connection, with nothing more
        except TimeoutError:
            closed = False  # kept open after all: the adapter could keep connections again

    headers = answer.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert headers.startswith("http/1.1 200")
    assert "keep-alive: timeout=" in headers
    assert "connection: close" not in headers
    assert closed


async def _tasks_back_to_back(server: LlamaServer, engine: str, workers: int = 2, turns: int = 8) -> list[str]:
    """Each worker's tasks one after another through `engine`'s adapter; how each ended."""

    async def tasks_in_turn(worker: int) -> list[str]:
        outcomes = []
        for turn in range(turns):
            request = EngineRequest(
                task_id=f"w{worker}-{turn}",
                engine_url=server.url,
                workload="completion",
                model_ref="tiny",
                max_tokens=8,
                prompt=f"turn {turn}",
            )
            try:
                events = [event async for event in adapter_for(engine).stream(request)]
                outcomes.append(type(events[-1]).__name__)
            except EngineError as exc:
                outcomes.append(exc.code)
        return outcomes

    try:
        results = await asyncio.gather(*(tasks_in_turn(worker) for worker in range(workers)))
    finally:
        await aclose_clients()
    return [outcome for outcomes in results for outcome in outcomes]


def _stale(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage() == "engine.connection_stale"]


async def test_tasks_back_to_back_on_its_connections_all_finish(
    llama_server: LlamaServer, caplog: pytest.LogCaptureFixture
) -> None:
    # On connections kept from the task before, about half of such tasks failed with WORKER_RESET.
    caplog.set_level(logging.INFO, logger="orchestrator.engines.adapter")

    outcomes = await _tasks_back_to_back(llama_server, "llamacpp")

    assert outcomes == ["Finished"] * 16
    # Each on a connection of its own: none met one the server had closed (which would be sent again).
    assert not _stale(caplog)


async def test_tasks_back_to_back_through_its_openai_endpoint_all_finish(
    llama_server: LlamaServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Registered as an OpenAI-compatible engine, it closes its connections all the same: the first
    # task to meet a closed one is sent again on a new one, and none is kept for it after that.
    caplog.set_level(logging.INFO, logger="orchestrator.engines.adapter")

    outcomes = await _tasks_back_to_back(llama_server, "openai", workers=4)

    assert outcomes == ["Finished"] * 32
    assert len(_stale(caplog)) <= 4  # at most the tasks already on their way when the first met one
