"""Run every benchmark and write docs/performance.md (by hand, never in the test suite).

    .venv/bin/python -m bench                # everything, 5 rounds (about 15 minutes)
    .venv/bin/python -m bench --rounds 2     # a quicker pass
    .venv/bin/python -m bench --no-litellm   # without the LiteLLM proxy
    .venv/bin/python -m bench --render bench/results/<run>.json   # docs again, after editing bench/tuning.md

Installs LiteLLM into bench/.venv-litellm on first use and builds llama-server
(tests/support/llama.py) if it is not cached yet. Raw results also go to
bench/results/<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import admission, relay_clients, report, streams, throughput, ttft
from bench.clients import Arm, Direct, LiteLLM, Orchd
from bench.harness import (
    ROOT,
    SERVERS,
    Engine,
    Proc,
    fake_engine,
    litellm_proxy,
    litellm_version,
    llama_server,
    orchestrator,
    register_pool,
)
from bench.stats import Estimate

RESULTS = ROOT / "bench" / "results"
# The fake engine of the TTFT runs: SPEC-like pacing, fixed text.
FAKE_TTFT_MS, FAKE_TOKENS_PER_S = 20, 50


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each paired measurement (default 5)")
    parser.add_argument("--no-litellm", action="store_true", help="leave the LiteLLM proxy out")
    parser.add_argument("--servers", default=",".join(SERVERS), help="web servers to measure (daphne,uvicorn)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated sections: ttft,throughput,saturation,clients,streams,admission (default: all)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="measure nothing: write --out again from a saved run (bench/results/*.json) and bench/tuning.md",
    )
    args = parser.parse_args()
    if args.render:
        args.out.write_text(report.render(json.loads(args.render.read_text())))
        _log(f"wrote {args.out} from {args.render}")
        return
    servers = [s for s in args.servers.split(",") if s]
    sections = set(args.only.split(",")) if args.only else set(report.SECTIONS)
    results: dict[str, Any] = {"meta": _meta(args, servers)}
    results["meta"]["load_before"] = _load()
    started = time.monotonic()
    for section in report.SECTIONS:
        if section in sections:
            _log(f"--- {section}")
            results[section] = RUNS[section](args, servers)
    results["meta"]["load_after"] = _load()
    results["meta"]["top_after"] = _top()
    results["meta"]["minutes"] = round((time.monotonic() - started) / 60, 1)
    RESULTS.mkdir(exist_ok=True)
    stamp = results["meta"]["date"].replace(":", "").replace("-", "")[:15]
    (RESULTS / f"{stamp}.json").write_text(json.dumps(results, indent=1, default=_jsonable))
    args.out.write_text(report.render(results))
    _log(f"wrote {args.out} and bench/results/{stamp}.json in {results['meta']['minutes']} min")


# --- the sections -------------------------------------------------------------------------------


@contextmanager
def _orchestrators(servers: list[str], engine: Engine, kind: str, slots: int) -> Iterator[list[tuple[Orchd, Proc]]]:
    """One orchestratord per web server, each with a pool on `engine`."""
    with ExitStack() as stack:
        arms = []
        for server in servers:
            orch = stack.enter_context(orchestrator(server))
            register_pool(orch, engine.url, engine=kind, slots=slots)
            arms.append((Orchd(orch.url, orch.token, engine=kind, name=f"orchestratord ({server})"), orch.proc))
        yield arms


@contextmanager
def _litellm(args: argparse.Namespace, engine: Engine) -> Iterator[list[tuple[Arm, Proc]]]:
    if args.no_litellm:
        yield []
        return
    with litellm_proxy(engine.url + "/v1") as proxy:
        yield [(LiteLLM(proxy.url, proxy.key, name="LiteLLM proxy"), proxy.proc)]


def run_ttft(args: argparse.Namespace, servers: list[str]) -> dict[str, Any]:
    engine_options: dict[str, Any] = {"ttft_ms": FAKE_TTFT_MS, "tokens_per_s": FAKE_TOKENS_PER_S, "slots": 64}
    out: dict[str, Any] = {}
    with ExitStack() as stack:
        engine = stack.enter_context(fake_engine(model="bench-model", **engine_options))
        orchs = stack.enter_context(_orchestrators(servers, engine, "openai", 64))
        proxy = stack.enter_context(_litellm(args, engine))
        arms: list[Arm] = [Direct(engine.url, name="engine (direct)"), *(a for a, _ in orchs), *(a for a, _ in proxy)]
        for concurrency, turns in ((1, 12), (50, 2)):
            _log(f"TTFT at {concurrency} stream(s)")
            measured = asyncio.run(ttft.measure(arms, concurrency=concurrency, rounds=args.rounds, turns=turns))
            out[str(concurrency)] = {
                name: {
                    "p50": r.p50(),
                    "p95": r.p95(),
                    "added": dataclasses.asdict(r.added()),
                    "round_medians": r.round_medians,
                    "errors": r.errors,
                    "failures": dict(r.failures),
                }
                for name, r in measured.items()
            }
    out["engine"] = engine_options
    return out


def run_throughput(args: argparse.Namespace, servers: list[str]) -> dict[str, Any]:
    """llama-server with 8 slots, 8 streams: what each path keeps of the engine's own throughput."""
    with ExitStack() as stack:
        engine = stack.enter_context(llama_server(slots=8))
        orchs = stack.enter_context(_orchestrators(servers, engine, "llamacpp", 8))
        proxy = stack.enter_context(_litellm(args, engine))
        arms: list[tuple[Arm, Proc | None]] = [
            (Direct(engine.url, "llamacpp", name="llama-server /completion"), None),
            *orchs,
            (Direct(engine.url, "openai", name="llama-server /v1/completions", llama_server=True), None),
            *proxy,
        ]
        measured = asyncio.run(throughput.measure(arms, streams=8, max_tokens=256, seconds=5, rounds=args.rounds))
        version = _llama_version(engine.url)
    # LiteLLM relays /v1/completions: compare it with that endpoint, the others with /completion.
    out = _windows(measured)
    native, openai = measured["llama-server /completion"], measured["llama-server /v1/completions"]
    for name, result in measured.items():
        reference = openai if name == "LiteLLM proxy" else native
        ratios = [w.tokens_per_s / r.tokens_per_s for w, r in zip(result.windows, reference.windows, strict=True)]
        out[name]["kept"] = dataclasses.asdict(Estimate.of(ratios))
    out["llama_server"] = version
    return out


def run_saturation(args: argparse.Namespace, servers: list[str]) -> dict[str, Any]:
    """The fake engine as fast as it goes, 64 streams: the web process is the bottleneck."""
    with ExitStack() as stack:
        engine = stack.enter_context(fake_engine(model="bench-model", ttft_ms=0, tokens_per_s=0, slots=128))
        orchs = stack.enter_context(_orchestrators(servers, engine, "openai", 128))
        proxy = stack.enter_context(_litellm(args, engine))
        arms: list[tuple[Arm, Proc | None]] = [*orchs, *proxy]
        measured = asyncio.run(throughput.measure(arms, streams=64, max_tokens=200, seconds=5, rounds=args.rounds))
    return _windows(measured)


def run_clients(args: argparse.Namespace, servers: list[str]) -> dict[str, Any]:
    """httpx against aiohttp reading the same 200 streams (paced, then as fast as the engine goes)."""
    out: dict[str, Any] = {}
    for label, tokens_per_s, max_tokens in (("paced", 20, 100), ("unpaced", 0, 200)):
        with fake_engine(model="bench-model", ttft_ms=0, tokens_per_s=tokens_per_s, slots=256) as engine:
            runs: dict[str, list[relay_clients.ClientRun]] = {client: [] for client in relay_clients.CLIENTS}
            for _ in range(args.rounds):
                for client in relay_clients.CLIENTS:
                    runs[client].append(relay_clients.measure(client, engine.url, 200, max_tokens))
        out[label] = {
            "engine_tokens_per_s_per_stream": tokens_per_s,
            **{client: [dataclasses.asdict(r) for r in rs] for client, rs in runs.items()},
        }
    return out


def run_streams(args: argparse.Namespace, servers: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for server in servers:
        engine_ctx = fake_engine(model="bench-model", ttft_ms=FAKE_TTFT_MS, tokens_per_s=2, slots=1100)
        with engine_ctx as engine, orchestrator(server) as orch:
            register_pool(orch, engine.url, engine="openai", slots=1100)
            arm = Orchd(orch.url, orch.token)
            _log(f"1,000 streams on {server}")
            held = asyncio.run(streams.hold(arm, orch.proc, streams=1000, tokens_per_s=2, hold_s=20))
            out[server] = dataclasses.asdict(held)
    return out


def run_admission(args: argparse.Namespace, servers: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for server in servers:
        with (
            fake_engine(model="bench-model", ttft_ms=0, tokens_per_s=1, slots=8) as engine,
            orchestrator(server) as orch,
        ):
            register_pool(orch, engine.url, engine="openai", slots=2)
            arm = Orchd(orch.url, orch.token)
            asyncio.run(admission.occupy_slots(arm, 2))
            _log(f"admission on {server}")
            closed = [
                asyncio.run(admission.closed_loop(arm, orch.proc, concurrency=50, seconds=6))
                for _ in range(args.rounds)
            ]
            capacity = sorted(r.tasks_per_s for r in closed)[len(closed) // 2]
            rates = [round(capacity * 0.5), round(capacity * 0.9), 500]
            opened = [
                asyncio.run(admission.open_loop(arm, orch.proc, rate=rate, seconds=6, concurrency=50)) for rate in rates
            ]
            out[server] = {
                "closed": [dataclasses.asdict(r) for r in closed],
                "open": [dataclasses.asdict(r) for r in opened],
            }
    return out


RUNS = {
    "ttft": run_ttft,
    "throughput": run_throughput,
    "saturation": run_saturation,
    "clients": run_clients,
    "streams": run_streams,
    "admission": run_admission,
}


# --- helpers ------------------------------------------------------------------------------------


def _windows(measured: dict[str, throughput.ArmWindows]) -> dict[str, Any]:
    return {
        name: {
            "tokens_per_s": r.tokens_per_s(),
            "cpu_us_per_token": r.cpu_us_per_token(),
            "cpu_share": r.cpu_share(),
            "windows": [dataclasses.asdict(w) for w in r.windows],
        }
        for name, r in measured.items()
    }


def _llama_version(url: str) -> str:
    import httpx

    try:
        return str(httpx.get(f"{url}/props", timeout=5).json().get("build_info", ""))
    except (httpx.HTTPError, ValueError):
        return ""


def _meta(args: argparse.Namespace, servers: list[str]) -> dict[str, Any]:
    import importlib.metadata as md

    from tests.support.llama import LLAMA_CPP_PYTHON_VERSION

    versions = {
        name: md.version(name)
        for name in (
            "django",
            "daphne",
            "twisted",
            "uvicorn",
            "uvloop",
            "httptools",
            "aiohttp",
            "httpx",
            "channels",
            "djangorestframework",
        )
    }
    versions["python"] = sys.version.split()[0]
    versions["llama.cpp (from llama-cpp-python)"] = LLAMA_CPP_PYTHON_VERSION
    if not args.no_litellm:
        from bench.harness import ensure_litellm

        ensure_litellm()
        versions["litellm"] = litellm_version()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {
        "command": " ".join([".venv/bin/python -m bench", *map(shlex.quote, sys.argv[1:])]),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit.stdout.strip() + (" (with uncommitted changes)" if dirty else ""),
        "versions": versions,
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "servers": servers,
        "rounds": args.rounds,
        "top_before": _top(),
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _top(count: int = 6) -> list[str]:
    """The busiest processes of the machine over the last second (what else was running)."""
    out = subprocess.run(["ps", "-eo", "pcpu,comm,args", "--sort=-pcpu"], capture_output=True, text=True).stdout
    rows = [line.strip() for line in out.splitlines()[1 : count + 1]]
    return [row[:140] for row in rows]


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)  # type: ignore[arg-type]
    return str(value)


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
