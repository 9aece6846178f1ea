"""`manage.py run` as the quick start runs it: web, worker and beat, with multiprocess metrics on.

Beat used to be the worker's embedded one (`worker --beat`): a process the
worker forks after closing the files it inherited, prometheus_client's
multiprocess files among them, so beat's first metric update raised EBADF
and it died, unseen by `run`, with every scheduled job.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from nodes.models import Node, NodeStatus
from tests.support.processes import child_env, manage, running, wait_until
from tests.support.web import free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_run_keeps_beat_alive_and_its_jobs_running(tmp_path: Path) -> None:
    past = timezone.now() - timedelta(seconds=5)
    Node.objects.create(id="silent", status=NodeStatus.ONLINE, stale_at=past, offline_at=past)
    # `run` puts the metrics in <data dir>/metrics: multiprocess mode, as the quick start has it.
    env = child_env(tmp_path, ORCHD_CELERY_QUEUE=f"test-{uuid.uuid4().hex[:10]}")
    command = manage("run", "--host", "127.0.0.1", "--port", str(free_port()))

    with running(command, env, tmp_path / "run.log") as supervisor:
        wait_until(
            lambda: Node.objects.get(id="silent").status == NodeStatus.OFFLINE,
            timeout_s=60,
            what="beat to run expire_stale_nodes",
        )
        assert supervisor.poll() is None, (tmp_path / "run.log").read_text()[-3000:]

    log = (tmp_path / "run.log").read_text()
    assert "Bad file descriptor" not in log
    assert "beat: Starting" in log
    assert list((tmp_path / "metrics").glob("*.db"))
