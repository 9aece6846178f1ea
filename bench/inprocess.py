"""Admission's own CPU cost, without HTTP: `POST /v2/tasks` through Django's test client, in this process.

    .venv/bin/python -m bench.inprocess [--admissions 300] [--queued 0] [--profile] [--postgres]

A fresh SQLite install in a temporary folder, one ready pool whose two slots
are never freed (no dispatcher runs here), so every admission after the
first two is queued: the cost measured is validation, authentication, the
checks and the persisted insert. `--queued N` admits N more tasks first,
to measure admission behind a deep queue. Prints the statements one admission runs
and the CPU time per admission; `--profile` adds cProfile's top functions.
`--postgres` runs on a fresh PostgreSQL database (`orchd_bench_inprocess` on
127.0.0.1:5432) instead, and also times the part of each admission that holds
the capacity lock, from the lock granted to the commit done: what admissions of
all web processes do one at a time.
Run it from another checkout (`cd ../old && python -m bench.inprocess`)
to compare versions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import tempfile
import time
import uuid
from typing import Any

from bench.harness import fresh_database


def _setup(data_dir: str, database_url: str | None = None) -> Any:
    os.environ.update(
        ORCHD_DATA_DIR=data_dir,
        ORCHD_ADMISSION_CAPACITY="1000000",
        PROMETHEUS_MULTIPROC_DIR=f"{data_dir}/metrics",
        ORCHD_METRICS_DIR=f"{data_dir}/metrics",
        DJANGO_SETTINGS_MODULE="orchestrator.settings",
    )
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    os.makedirs(f"{data_dir}/metrics", exist_ok=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from orchestrator.auth.models import Role
    from orchestrator.auth.services import issue_token

    call_command("migrate", verbosity=0)
    logging.disable(logging.CRITICAL)  # the logs' cost is the server's, not admission's
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issue_token('bench', Role.OPERATOR).value}", HTTP_HOST="127.0.0.1")
    pool = {"pool_id": "p1", "engine": "openai", "engine_url": "http://127.0.0.1:9", "models": ["m"], "slots_total": 2}
    beat = {"pools": [{"pool_id": "p1", "ready": True, "slots_total": 2, "slots_free": 2}]}
    for path, body in (("/v2/nodes/register", {"node_id": "n1", "pools": [pool]}), ("/v2/nodes/n1/heartbeat", beat)):
        answer = client.post(path, body, content_type="application/json")
        if answer.status_code >= 300:
            raise RuntimeError(f"{path} answered {answer.status_code}: {answer.content!r}")
    return client


# PostgreSQL: the queue's deltas folded into its tally every this many admissions, as each
# web process's dispatcher does every second (none runs here).
FOLD_EVERY = 200


def _folding() -> Any:
    """The fold of the queue's tally (PostgreSQL), in a checkout that has one."""
    from orchestrator.tasks import tally

    return getattr(tally, "fold", None)


class _CapacitySection:
    """Times each transaction from the capacity lock granted to its commit done, and counts its statements."""

    def __init__(self, connection: Any) -> None:
        self.held: list[float] = []
        self.statements = 0
        self._granted: float | None = None
        self._count = 0
        connection.execute_wrappers.append(self._statement)
        commit = connection.commit

        def timed_commit() -> None:
            commit()
            if self._granted is not None:
                self.held.append((time.perf_counter() - self._granted) * 1000)
                self.statements, self._granted = self._count, None

        connection.commit = timed_commit

    def _statement(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if "pg_advisory_xact_lock" in sql:
            self._granted, self._count = time.perf_counter(), 0
        elif self._granted is not None:
            self._count += 1
        return result


def _task(index: int) -> dict[str, Any]:
    return {
        "task_id": uuid.uuid4().hex,
        "session_id": f"bench-{index % 50}",
        "workload": "completion",
        "model_ref": "m",
        "engine": "openai",
        "ctx": 256,
        "priority": "interactive",
        "prompt": "Write a short story about a server that relays tokens.",
        "max_tokens": 16,
        "deadline_ms": 600_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--admissions", type=int, default=300)
    parser.add_argument("--queued", type=int, default=0, help="tasks queued before the measurement")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument("--postgres", action="store_true", help="on PostgreSQL; time the capacity lock")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orchd-bench-inprocess-") as data_dir:
        client = _setup(data_dir, fresh_database("inprocess") if args.postgres else None)
        from django.db import connection

        section = _CapacitySection(connection) if args.postgres else None
        from django.test.utils import CaptureQueriesContext

        def admit(index: int) -> None:
            answer = client.post("/v2/tasks", _task(index), content_type="application/json")
            if answer.status_code != 202:
                raise RuntimeError(f"admission answered {answer.status_code}: {answer.content!r}")

        fold = _folding() if args.postgres else None
        for index in range(20 + args.queued):  # warm up; the pool's slots are taken from here on
            admit(index)
            if fold and index % FOLD_EVERY == 0:
                fold()
        with CaptureQueriesContext(connection) as queries:
            admit(0)
        print(f"statements per admission: {len(queries.captured_queries)}")
        for query in queries.captured_queries:
            print(f"  {query['sql'][:110]}")
        if section:
            section.held.clear()
        profile = cProfile.Profile() if args.profile else None
        started, cpu = time.perf_counter(), time.process_time()
        if profile:
            profile.enable()
        for index in range(args.admissions):
            admit(index)
            if fold and index % FOLD_EVERY == 0:
                fold()
        if profile:
            profile.disable()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"{args.admissions} admissions behind {args.queued + 19} queued tasks: "
            f"{wall / args.admissions * 1000:.2f} ms wall, "
            f"{cpu / args.admissions * 1000:.2f} ms CPU each" + (" (under cProfile)" if profile else "")
        )
        if section:
            held = sorted(section.held)
            print(
                f"capacity lock held per admission: {section.statements} statements, then the commit; "
                f"median {held[len(held) // 2]:.3f} ms, p99 {held[int(len(held) * 0.99)]:.3f} ms "
                f"(one at a time across processes: at most {1000 / held[len(held) // 2]:.0f} admissions/s)"
            )
        if profile:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)
            print(out.getvalue())


if __name__ == "__main__":
    main()
