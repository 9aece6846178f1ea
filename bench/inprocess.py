"""Admission's own CPU cost, without HTTP: `POST /v2/tasks` through Django's test client, in this process.

    .venv/bin/python -m bench.inprocess [--admissions 300] [--queued 0] [--profile]

A fresh SQLite install in a temporary folder, one ready pool whose two slots
are never freed (no dispatcher runs here), so every admission after the
first two is queued: the cost measured is validation, authentication, the
checks and the persisted insert. `--queued N` admits N more tasks first,
to measure admission behind a deep queue. Prints the statements one admission runs
and the CPU time per admission; `--profile` adds cProfile's top functions.
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


def _setup(data_dir: str) -> Any:
    os.environ.update(
        ORCHD_DATA_DIR=data_dir,
        ORCHD_ADMISSION_CAPACITY="1000000",
        PROMETHEUS_MULTIPROC_DIR=f"{data_dir}/metrics",
        ORCHD_METRICS_DIR=f"{data_dir}/metrics",
        DJANGO_SETTINGS_MODULE="orchestrator.settings",
    )
    for name in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(name, None)
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orchd-bench-inprocess-") as data_dir:
        client = _setup(data_dir)
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        def admit(index: int) -> None:
            answer = client.post("/v2/tasks", _task(index), content_type="application/json")
            if answer.status_code != 202:
                raise RuntimeError(f"admission answered {answer.status_code}: {answer.content!r}")

        for index in range(20 + args.queued):  # warm up; the pool's slots are taken from here on
            admit(index)
        with CaptureQueriesContext(connection) as queries:
            admit(0)
        print(f"statements per admission: {len(queries.captured_queries)}")
        for query in queries.captured_queries:
            print(f"  {query['sql'][:110]}")
        profile = cProfile.Profile() if args.profile else None
        started, cpu = time.perf_counter(), time.process_time()
        if profile:
            profile.enable()
        for index in range(args.admissions):
            admit(index)
        if profile:
            profile.disable()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"{args.admissions} admissions behind {args.queued + 19} queued tasks: "
            f"{wall / args.admissions * 1000:.2f} ms wall, "
            f"{cpu / args.admissions * 1000:.2f} ms CPU each" + (" (under cProfile)" if profile else "")
        )
        if profile:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)
            print(out.getvalue())


if __name__ == "__main__":
    main()
