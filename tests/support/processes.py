"""Real processes for integration tests: manage.py commands that share the test database.

A subprocess (a Celery worker, the node agent, a second web server) must see
the database the test wrote to. `child_env()` builds its environment from the
test process's own connection settings, so the same test runs on SQLite (a
file database) and on PostgreSQL unchanged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """A DATABASE_URL for the database this test process is using right now."""
    db = connection.settings_dict
    if "sqlite" in db["ENGINE"]:
        name = str(db["NAME"])
        if name.startswith(":memory:") or "mode=memory" in name:
            raise RuntimeError("subprocess tests need a file-based SQLite test database")
        return f"sqlite:///{name}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def child_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        ORCHD_DATA_DIR=str(data_dir),
        ORCHD_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.pop("ORCHD_METRICS_DIR", None)
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


@contextmanager
def running(argv: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a child process for the duration of the block; its output goes to `log_path`.

    The child leads a process group of its own, and `stop` ends the group: what the child
    started itself (a Celery worker's embedded beat is a process) ends with it, even if the
    child has to be killed.
    """
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            stop(process, group=True)


def manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def stop(process: subprocess.Popen[bytes], grace_s: float = 10.0, *, group: bool | None = None) -> int | None:
    """SIGTERM, then after `grace_s` SIGKILL: the process, or its whole process group and what is
    left of that after it ended (`group`; by default, if it is alive and leads one)."""
    leads = _leads_group(process) if group is None else group
    if process.poll() is None:
        _signal(process, signal.SIGTERM, leads)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal(process, signal.SIGKILL, leads)
            process.wait(timeout=5)
    if leads:
        _signal(process, signal.SIGKILL, leads)  # a child of the child that outlived it
    return process.returncode


def _leads_group(process: subprocess.Popen[bytes]) -> bool:
    try:
        return process.poll() is None and os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return False


def _signal(process: subprocess.Popen[bytes], number: int, group: bool) -> None:
    try:
        if group:
            os.killpg(process.pid, number)
        else:
            process.send_signal(number)
    except ProcessLookupError:
        pass


def wait_until(predicate: Callable[[], Any], timeout_s: float = 20.0, interval_s: float = 0.1, what: str = "") -> Any:
    """Poll until `predicate()` is truthy; return its value or fail with `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")
