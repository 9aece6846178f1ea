"""Before/after: one scenario against two checkouts of orchestratord, side by side.

Both versions run at once (two web processes on their own SQLite installs,
one engine) and are measured in turn, so a change of machine load hits both
alike. Used for the per-change numbers in docs/performance.md:

    .venv/bin/python -m bench.compare ttft1 /tmp/before /work/main
    .venv/bin/python -m bench.compare relay /tmp/before /work/main --server uvicorn
    .venv/bin/python -m bench.compare relay /tmp/before /work/main --streams 16 --max-tokens 20
    .venv/bin/python -m bench.compare relay /tmp/before /work/main --postgres   # scale-out mode

With `--postgres`, each version runs on its own fresh PostgreSQL database
(`orchd_bench_before`, `orchd_bench_after` on 127.0.0.1:5432, dropped and
created anew) and its own Redis database, as the scale-out mode runs.

Scenarios: ttft1, ttft50, relay (fake engine, as fast as possible), llama
(llama-server, 8 slots), admission (closed loop at 50; with `--rate N`, an
open loop offering N tasks/s over at most 50 connections), streams (1,000
held).
"""

from __future__ import annotations

import argparse
import asyncio
from contextlib import ExitStack
from pathlib import Path

from bench import admission, streams, throughput, ttft
from bench.clients import Arm, Direct, Orchd
from bench.harness import Engine, Proc, fake_engine, llama_server, orchestrator, register_pool, scale_out_env

RELAY_STREAMS = 64
RELAY_TPS = 0.0
RELAY_TOKENS = 200
ADMISSION_RATE = 0.0


def _engine(scenario: str, stack: ExitStack) -> tuple[Engine, str, int]:
    if scenario == "llama":
        return stack.enter_context(llama_server(slots=8)), "llamacpp", 8
    if scenario == "relay":
        engine = fake_engine(model="bench-model", ttft_ms=0, tokens_per_s=RELAY_TPS, slots=RELAY_STREAMS + 64)
        return stack.enter_context(engine), "openai", RELAY_STREAMS + 64
    if scenario == "admission":
        return stack.enter_context(fake_engine(model="bench-model", ttft_ms=0, tokens_per_s=1, slots=8)), "openai", 2
    if scenario == "streams":
        return (
            stack.enter_context(fake_engine(model="bench-model", ttft_ms=20, tokens_per_s=2, slots=1100)),
            "openai",
            1100,
        )
    return stack.enter_context(fake_engine(model="bench-model", ttft_ms=20, tokens_per_s=50, slots=64)), "openai", 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=["ttft1", "ttft50", "relay", "llama", "admission", "streams"])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--server", default="daphne")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--streams", type=int, default=64, help="relay: concurrent streams")
    parser.add_argument("--tps", type=float, default=0, help="relay: the engine's tokens/s per stream (0 = unpaced)")
    parser.add_argument("--max-tokens", type=int, default=200, help="relay: tokens per task (few = per-task costs)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis (scale-out mode), not SQLite")
    parser.add_argument(
        "--rate", type=float, default=0, help="admission: an open loop offering this many tasks/s (0: closed loop)"
    )
    args = parser.parse_args()
    global RELAY_STREAMS, RELAY_TPS, RELAY_TOKENS, ADMISSION_RATE  # noqa: PLW0603 - a by-hand tool's knobs
    RELAY_STREAMS, RELAY_TPS, RELAY_TOKENS, ADMISSION_RATE = args.streams, args.tps, args.max_tokens, args.rate
    with ExitStack() as stack:
        engine, kind, slots = _engine(args.scenario, stack)
        orchs = []
        for index, (name, tree) in enumerate((("before", args.before), ("after", args.after))):
            env = scale_out_env(name, index) if args.postgres else {}
            orch = stack.enter_context(orchestrator(args.server, tree=tree.resolve(), env_extra=env))
            register_pool(orch, engine.url, engine=kind, slots=slots)
            orchs.append((Orchd(orch.url, orch.token, engine=kind, name=name), orch.proc))
        print(asyncio.run(_run(args.scenario, engine, kind, orchs, args.rounds)))


async def _run(scenario: str, engine: Engine, kind: str, orchs: list[tuple[Orchd, Proc]], rounds: int) -> str:
    if scenario in ("ttft1", "ttft50"):
        return await _ttft(1 if scenario == "ttft1" else 50, engine, kind, orchs, rounds)
    if scenario in ("relay", "llama"):
        return await _relay(scenario, engine, kind, orchs, rounds)
    if scenario == "admission":
        return await _admission(orchs, rounds)
    lines = []
    for arm, proc in orchs:
        held = await streams.hold(arm, proc, streams=1000, tokens_per_s=2, hold_s=15)
        lines.append(f"{arm.name:>8}: {held}")
    return "\n".join(lines)


async def _ttft(concurrency: int, engine: Engine, kind: str, orchs: list[tuple[Orchd, Proc]], rounds: int) -> str:
    arms: list[Arm] = [Direct(engine.url, kind), *(arm for arm, _ in orchs)]
    results = await ttft.measure(arms, concurrency=concurrency, rounds=rounds, turns=8 if concurrency == 1 else 2)
    return "\n".join(
        f"{name:>8}: p50 {r.p50():6.1f} ms, added {r.added().fmt()}, errors {r.errors}" for name, r in results.items()
    )


async def _relay(scenario: str, engine: Engine, kind: str, orchs: list[tuple[Orchd, Proc]], rounds: int) -> str:
    direct: list[tuple[Arm, Proc | None]] = [(Direct(engine.url, kind), None)] if scenario == "llama" else []
    arms: list[tuple[Arm, Proc | None]] = [*direct, *orchs]
    streams_n, max_tokens = (8, 256) if scenario == "llama" else (RELAY_STREAMS, RELAY_TOKENS)
    results = await throughput.measure(arms, streams=streams_n, max_tokens=max_tokens, seconds=5, rounds=rounds)
    return "\n".join(
        f"{name:>8}: {r.tokens_per_s():7.0f} tokens/s, {r.cpu_us_per_token():5.0f} µs CPU/token "
        f"({r.cpu_us_per_token() * max_tokens / 1000:.1f} ms/task), "
        f"{r.cpu_share():.2f} cores, vs first arm {r.kept().fmt('', 2)}"
        for name, r in results.items()
    )


async def _admission(orchs: list[tuple[Orchd, Proc]], rounds: int) -> str:
    for arm, _ in orchs:
        await admission.occupy_slots(arm, 2)
    runs: dict[str, list[admission.AdmissionRun]] = {arm.name: [] for arm, _ in orchs}
    for _ in range(rounds):
        for arm, proc in orchs:
            if ADMISSION_RATE:
                run = await admission.open_loop(arm, proc, rate=ADMISSION_RATE, seconds=6, concurrency=50)
            else:
                run = await admission.closed_loop(arm, proc, concurrency=50, seconds=5)
            runs[arm.name].append(run)
    return "\n".join(
        f"{name:>8}: " + ", ".join(f"{r.tasks_per_s:.0f}/s p50 {r.p50_ms:.1f} p99 {r.p99_ms:.1f} ms" for r in rs)
        for name, rs in runs.items()
    )


if __name__ == "__main__":
    main()
