"""A web process dies: queued tasks survive and complete; its running tasks are recovered."""

from __future__ import annotations

import signal

import pytest

from pools.models import Pool
from tests.engines import run_fake_engine
from tests.support.processes import wait_until
from tests.support.web import read_stream
from tests.tasks.conftest import add_pool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def kill(client):
    client.server.process.send_signal(signal.SIGKILL)
    client.server.process.wait(timeout=10)


def test_queued_tasks_survive_a_restart_and_complete(web):
    with run_fake_engine("llamacpp", slots=2) as engine:
        add_pool("p1", engine.url, slots=2, active_leases=2)  # full: nothing can be dispatched yet
        first = web("first", ORCHD_ATTACH_TIMEOUT_S="0")
        task_ids = [first.submit(max_tokens=6).json()["task_id"] for _ in range(4)]
        assert all(first.status(t)["state"] == "queued" for t in task_ids)

        kill(first)
        Pool.objects.filter(id="p1").update(active_leases=0)
        second = web("second", ORCHD_ATTACH_TIMEOUT_S="0")

        streams = [read_stream(second.server.url, second.token, t) for t in task_ids]

    assert all(stream.names[0] == "started" for stream in streams)
    assert all(stream.terminal.event == "end" for stream in streams)
    assert all(stream.terminal.data["tokens_out"] == 6 for stream in streams)
    assert all(second.status(t)["state"] == "completed" for t in task_ids)


def test_a_running_task_of_a_dead_process_is_failed_with_worker_reset_and_its_lease_returned(web):
    with run_fake_engine("llamacpp", slots=2, tokens_per_s=5) as engine:
        add_pool("p1", engine.url, slots=2)
        first = web("first", ORCHD_ATTACH_TIMEOUT_S="0")
        task_id = first.submit(max_tokens=100).json()["task_id"]
        wait_until(lambda: first.status(task_id)["state"] == "running", what="running")

        kill(first)
        second = web("second", ORCHD_ATTACH_TIMEOUT_S="0")

        status = wait_until(
            lambda: (s := second.status(task_id))["state"] == "failed" and s, timeout_s=40, what="orphan recovered"
        )
    assert status["error"]["code"] == "WORKER_RESET"
    assert Pool.objects.get(id="p1").active_leases == 0
