"""TTFT added by orchestratord over calling the engine directly, at one stream.

Pairs of requests, interleaved (direct, relayed, direct, relayed, ...), each
timed from sending the request to receiving the first *content* token; the
result is the median of the pair differences with a bootstrap 95% CI.

    .venv/bin/python -m bench.relay_ttft [--pairs 60]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid

import httpx

from bench.harness import Orchestrator, fake_engine, orchestrator, register_pool


def direct_ttft(client: httpx.Client, engine_url: str) -> float:
    started = time.perf_counter()
    body = {"prompt": "hello", "n_predict": 8, "stream": True}
    with client.stream("POST", f"{engine_url}/completion", json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("content"):
                return (time.perf_counter() - started) * 1000
    raise RuntimeError("no token")


def relayed_ttft(client: httpx.Client, orch: Orchestrator) -> float:
    headers = {"Authorization": f"Bearer {orch.token}"}
    task = {
        "task_id": uuid.uuid4().hex,
        "session_id": "bench",
        "workload": "completion",
        "model_ref": "bench-model",
        "engine": "llamacpp",
        "ctx": 512,
        "priority": "interactive",
        "max_tokens": 8,
        "deadline_ms": 60000,
        "prompt": "hello",
    }
    started = time.perf_counter()
    admitted = client.post(f"{orch.url}/v2/tasks", json=task, headers=headers)
    admitted.raise_for_status()
    events = f"{orch.url}{admitted.json()['streams']['sse']}"
    with client.stream("GET", events, headers=headers) as response:
        for line in response.iter_lines():
            if line == "event: token":
                return (time.perf_counter() - started) * 1000
    raise RuntimeError("no token")


def bootstrap_ci(values: list[float], rounds: int = 2000) -> tuple[float, float]:
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(rounds))
    return medians[int(0.025 * rounds)], medians[int(0.975 * rounds)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=60)
    args = parser.parse_args()
    with fake_engine(ttft_ms=20, tokens_per_s=50, slots=8) as engine_url, orchestrator() as orch:
        register_pool(orch, engine_url)
        with httpx.Client(timeout=30) as client:
            for _ in range(5):  # warm up connections and code paths
                direct_ttft(client, engine_url)
                relayed_ttft(client, orch)
            diffs, direct, relayed = [], [], []
            for _ in range(args.pairs):
                d = direct_ttft(client, engine_url)
                r = relayed_ttft(client, orch)
                direct.append(d)
                relayed.append(r)
                diffs.append(r - d)
    low, high = bootstrap_ci(diffs)
    print(
        f"direct TTFT p50 {statistics.median(direct):.1f} ms, via orchestratord p50 {statistics.median(relayed):.1f} ms"
    )
    print(
        f"TTFT added (median of {args.pairs} pair differences): {statistics.median(diffs):.1f} ms "
        f"(95% CI {low:.1f} .. {high:.1f} ms)"
    )


if __name__ == "__main__":
    main()
