"""The test suite's own child processes (tests/support/processes.py): none outlives its test.

A Celery worker started with `--beat` runs beat as a process of its own; when
the worker had to be killed, that process went on after the test run, holding
the test database open and scheduling jobs.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tests.support.processes import running, wait_until

# A child that starts a grandchild ignoring SIGTERM, prints its pid, and ends on SIGTERM itself.
GRANDCHILD = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(120)"
)
PARENT = f"""
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", {GRANDCHILD!r}])
print(grandchild.pid, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    """Running, or stopped, but not gone nor a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_child_and_what_it_started_end_with_the_block(tmp_path: Path) -> None:
    log = tmp_path / "parent.log"

    with running([sys.executable, "-c", PARENT], dict(os.environ), log) as parent:
        text = wait_until(lambda: "ready" in log.read_text() and log.read_text(), timeout_s=20, what="the grandchild")
        grandchild = next(int(word) for word in text.split() if word.isdigit())
        assert alive(grandchild)
        assert os.getpgid(grandchild) == parent.pid  # in the child's own group, not the test run's
        assert os.getpgid(parent.pid) != os.getpgid(0)

    assert parent.returncode is not None
    deadline = time.monotonic() + 10
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)
