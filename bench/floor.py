"""The stack's floor for admission: the same load against apps that do none, or the least, of admission's work.

    .venv/bin/python -m bench.floor [--servers daphne,uvicorn] [--rounds 3] [--rate 500]
    .venv/bin/python -m bench.floor --apps django_lean --collectors started,frozen,rare,off
    .venv/bin/python -m bench.floor --relay [--servers daphne,uvicorn] [--rounds 5]

For each web server, seven apps (`--apps` chooses the floor's) take turns
under the load generator of the admission benchmark (`bench.admission`, closed loop of 50 clients, or with
`--rate` an open loop over at most 50 connections):

- `bare`: an ASGI app that reads the body, parses it and answers 202 with a
  body of the admission answer's shape (bench/floor_app.py): the server and
  the load generator alone;
- `django`: the same answer from a sync Django view behind Django's stock
  ASGI handler, with no middleware and no database;
- `django_async`: the same from an async view;
- `django_lean`: an async view served as orchestratord serves requests on
  SQLite (one thread for sync code, no thread-sensitive context per
  request, the connection checks after the view): a reference for the CPU
  of Django's request path as orchestratord uses it (bench/floor_app.py);
- `django_lean_persisted`: `django_lean` that, before it answers, checks
  the bearer token and commits the task's row in SQLite, as orchestratord
  configures it, through Django's connection on the one sync thread: the
  least an admission that persists its task through Django does
  (bench/floor_app.py);
- `django_lean_persisted_loop`: the same statements on a raw sqlite3
  connection on the event loop's thread, with no second thread;
- `orchestratord`: a fresh install admitting tasks, as `compare admission`.

They show what the server and the framework cost on this machine, apart
from admission's own work: on two cores, the load generator takes its
share of the same CPU. The apps run with their start-up heap frozen out of
the garbage collector's passes, as orchestratord's process does;
`--collectors` runs each app once per collector setting named
(bench/floor_app.py), side by side, to measure what the collector costs.

`--relay`: llama-server with 8 slots and 8 streams of 256 tokens, as the
full run's "throughput kept" (`bench.throughput`, the engine direct as
the reference, arms interleaved): the `relay` app on each server, which
passes the engine's bytes through without reading them, against
orchestratord. What the bare relay keeps is about the most a relay in
Python keeps on these cores.

Run by hand; the numbers go to bench/tuning.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from bench import admission, throughput
from bench.clients import Arm, Direct, Orchd
from bench.floor_settings import COLLECTORS, FLOOR_TOKEN
from bench.harness import (
    SERVERS,
    Proc,
    fake_engine,
    free_port,
    llama_server,
    orchestrator,
    process,
    register_pool,
    server_argv,
    wait_http,
)

APPS = ("bare", "django", "django_async", "django_lean", "django_lean_persisted", "django_lean_persisted_loop")


@contextmanager
def floor_server(server: str, app: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, Proc]]:
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="orchd-floor-") as data_dir,
        process(
            server_argv(server, port, f"bench.floor_app:{app}"),
            dict(os.environ, FLOOR_DATA_DIR=data_dir, **(env or {})),
        ) as proc,
    ):
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", proc=proc)
        yield url, Proc(proc.pid)


def _admission(server: str, rounds: int, rate: float, apps: list[str], collectors: list[str]) -> None:
    with ExitStack() as stack:
        arms = []
        for app in apps:
            for collector in collectors:
                url, proc = stack.enter_context(floor_server(server, app, {"FLOOR_COLLECTOR": collector}))
                name = app if collectors == ["frozen"] else f"{app}, {collector}"
                arms.append((Orchd(url, FLOOR_TOKEN, name=name), proc))
        engine = stack.enter_context(fake_engine(model="bench-model", ttft_ms=0, tokens_per_s=1, slots=8))
        orch = stack.enter_context(orchestrator(server))
        register_pool(orch, engine.url, engine="openai", slots=2)
        arm = Orchd(orch.url, orch.token, name="orchestratord")
        asyncio.run(admission.occupy_slots(arm, 2))
        arms.append((arm, orch.proc))
        runs = asyncio.run(_measure(arms, rounds, rate))
    print(f"{server}, " + (f"open loop at {rate:.0f}/s:" if rate else "closed loop of 50:"))
    for name, app_runs in runs.items():
        print(_line(name, app_runs))


def _relay(server: str, rounds: int) -> None:
    with ExitStack() as stack:
        engine = stack.enter_context(llama_server(slots=8))
        relay_env = {"FLOOR_ENGINE_URL": engine.url, "FLOOR_COLLECTOR": "frozen"}  # --collectors: admission only
        url, proc = stack.enter_context(floor_server(server, "relay", relay_env))
        orch = stack.enter_context(orchestrator(server))
        register_pool(orch, engine.url, engine="llamacpp", slots=8)
        arms: list[tuple[Arm, Proc | None]] = [
            (Direct(engine.url, "llamacpp"), None),
            (Direct(url, "llamacpp", name="bare relay"), proc),
            (Orchd(orch.url, orch.token, engine="llamacpp", name="orchestratord"), orch.proc),
        ]
        results = asyncio.run(throughput.measure(arms, streams=8, max_tokens=256, seconds=5, rounds=rounds))
    print(f"{server}, llama-server, 8 streams of 256 tokens:")
    for name, result in results.items():
        print(
            f"{name:>14}: {result.tokens_per_s():6.0f} tokens/s, {result.cpu_us_per_token():4.0f} µs CPU/token, "
            f"kept {result.kept().fmt('', 2)}"
        )


async def _measure(arms: list[tuple[Orchd, Proc]], rounds: int, rate: float) -> dict[str, list[admission.AdmissionRun]]:
    runs: dict[str, list[admission.AdmissionRun]] = {arm.name: [] for arm, _ in arms}
    for turn in range(rounds):
        # Interleaved, and which goes first rotating, so that the machine's drift hits every app alike.
        for arm, proc in arms[turn % len(arms) :] + arms[: turn % len(arms)]:
            if rate:
                run = await admission.open_loop(arm, proc, rate=rate, seconds=6, concurrency=50)
            else:
                run = await admission.closed_loop(arm, proc, concurrency=50, seconds=5)
            runs[arm.name].append(run)
    return runs


def _round(run: admission.AdmissionRun) -> str:
    cpu = f"{run.cpu_share / run.tasks_per_s * 1e6:.0f} µs CPU each" if run.tasks_per_s else "none answered"
    errors = f", {run.errors} errors" if run.errors else ""
    return f"{run.tasks_per_s:.0f}/s p99 {run.p99_ms:.1f} ms ({cpu}{errors})"


def _line(name: str, runs: list[admission.AdmissionRun]) -> str:
    return f"{name:>14}: " + ", ".join(_round(run) for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=0, help="an open loop offering this many tasks/s (0: closed)")
    parser.add_argument("--relay", action="store_true", help="llama-server's throughput kept by a bare relay")
    parser.add_argument("--apps", default=",".join(APPS), help="the floor apps to measure beside orchestratord")
    parser.add_argument(
        "--collectors",
        default="frozen",
        help=f"the floor apps' garbage collector, each a separate arm: {', '.join(COLLECTORS)} "
        "(bench/floor_app.py; orchestratord keeps its own)",
    )
    args = parser.parse_args()
    apps, collectors = _choices(args.apps, APPS), _choices(args.collectors, COLLECTORS)
    for server in [s for s in args.servers.split(",") if s]:
        if args.relay:
            _relay(server, args.rounds)
        else:
            _admission(server, args.rounds, args.rate, apps, collectors)


def _choices(listed: str, known: tuple[str, ...]) -> list[str]:
    chosen = [name for name in listed.split(",") if name]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise SystemExit(f"unknown: {', '.join(unknown)} (known: {', '.join(known)})")
    if len(set(chosen)) < len(chosen):
        raise SystemExit(f"named twice in {listed!r}: each arm's rounds are kept under its name")
    return chosen


if __name__ == "__main__":
    main()
