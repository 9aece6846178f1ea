"""A separate Celery worker (with beat) runs the platform's jobs over the configured broker.

On embedded defaults the broker is kombu's filesystem transport, so this
proves a real second process picks jobs up with no broker server; with
REDIS_URL set, the same test runs over Redis. Each test uses its own queue so
parallel test workers never take each other's jobs.
"""

from __future__ import annotations

import hashlib
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from catalog.models import CatalogModel
from nodes.models import Node, NodeStatus
from orchestrator.celery import app as celery_app
from tests.support.processes import child_env, running, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(tmp_path, settings, models_dir):
    queue = f"test-{uuid.uuid4().hex[:10]}"
    previous = celery_app.conf.task_default_queue
    use_queue(queue)
    env = child_env(
        settings.DATA_DIR,
        ORCHD_CELERY_QUEUE=queue,
        ORCHD_MODELS_DIR=str(models_dir),
        ORCHD_HEARTBEAT_INTERVAL_MS="100",
        ORCHD_NODE_TIMEOUT_MS="500",
        ORCHD_SESSION_PURGE_INTERVAL_S="1",
    )
    argv = [
        "celery",
        "-A",
        "orchestrator",
        "worker",
        "--beat",
        "--loglevel",
        "INFO",
        "--pool",
        "solo",
        "-Q",
        queue,
        "--hostname",
        f"{queue}@%h",
        "--schedule",
        str(tmp_path / "beat-schedule"),
    ]
    argv[0] = str(Path(sys.executable).with_name("celery"))
    try:
        with running(argv, env, tmp_path / "worker.log") as process:
            yield process
    finally:
        use_queue(previous)
        print((tmp_path / "worker.log").read_text()[-3000:])


def use_queue(name):
    """Send this process's jobs to `name`; Celery caches routing in `app.amqp`, so rebuild it."""
    # The app reads Django settings under the CELERY_ namespace, so the namespaced key is the one that counts.
    celery_app.conf.CELERY_TASK_DEFAULT_QUEUE = name
    celery_app.__dict__.pop("amqp", None)


def test_a_verification_requested_over_the_api_runs_in_the_worker_process(worker, alice, models_dir):
    content = b"tiny model weights" * 1000
    (models_dir / "tiny-model").write_bytes(content)
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    alice.post("/v2/catalog/models", {"id": "tiny-model", "digest": digest})

    response = alice.post("/v2/catalog/models/tiny-model/verify")

    assert response.status_code == 202
    model = wait_until(
        lambda: (m := CatalogModel.objects.get(id="tiny-model")).verification_status == "passed" and m,
        timeout_s=60,
        what="the worker to verify the model",
    )
    assert model.verification_reason in ("", "digest_match")


def test_beat_in_the_worker_expires_a_silent_node(worker):
    past = timezone.now() - timedelta(seconds=5)
    Node.objects.create(id="silent", status=NodeStatus.ONLINE, stale_at=past, offline_at=past)

    wait_until(
        lambda: Node.objects.get(id="silent").status == NodeStatus.OFFLINE,
        timeout_s=60,
        what="beat to run expire_stale_nodes",
    )


def test_beat_in_the_worker_removes_expired_sessions(worker):
    from orchestrator.sessions.models import Session

    now = timezone.now()
    Session.objects.create(id="old", created_at=now - timedelta(hours=1), expires_at=now - timedelta(minutes=1))
    Session.objects.create(id="live", created_at=now, expires_at=now + timedelta(hours=1))

    wait_until(lambda: not Session.objects.filter(id="old").exists(), timeout_s=60, what="the session purge job")
    assert Session.objects.filter(id="live").exists()
