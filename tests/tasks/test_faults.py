"""Failures on the task path: dead, down, stalled engines, lost nodes, full queues, deadlines, abandonment."""

from __future__ import annotations

import httpx
import pytest

from nodes.models import Node, NodeStatus
from tests.engines import run_fake_engine
from tests.support.processes import wait_until
from tests.support.web import Stream, free_port, parse_sse, read_stream
from tests.tasks.conftest import add_pool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_engine_dying_mid_stream_ends_with_worker_reset(web):
    with run_fake_engine("llamacpp") as engine:
        add_pool("p1", engine.url)
        client = web()
        task_id = client.submit(prompt="[[fault:die_after=3]] hi", max_tokens=20).json()["task_id"]

        stream = read_stream(client.server.url, client.token, task_id)

    assert stream.names.count("token") == 3
    error = stream.terminal
    assert error.event == "error"
    assert error.data["code"] == "WORKER_RESET"
    assert error.data["retriable"] is True
    assert error.data["pool_id"] == "p1"
    assert client.status(task_id)["state"] == "failed"
    assert client.status(task_id)["error"]["code"] == "WORKER_RESET"


def test_an_engine_down_before_the_first_token_is_retried_on_another_pool(web):
    with run_fake_engine("llamacpp") as engine:
        add_pool("a-down", f"http://127.0.0.1:{free_port()}", slots=8)  # preferred: most free slots
        add_pool("b-up", engine.url, slots=2)
        client = web()
        task_id = client.submit(max_tokens=5).json()["task_id"]

        stream = read_stream(client.server.url, client.token, task_id)

    assert stream.terminal.event == "end"
    assert stream.terminal.data["tokens_out"] == 5
    status = client.status(task_id)
    assert status["pool_id"] == "b-up"
    prep = [e.data["prep"] for e in stream.events if e.event == "metrics" and "prep" in e.data]
    assert [p["pool_id"] for p in prep] == ["a-down", "b-up"]


def test_a_5xx_before_the_first_token_is_retried_and_then_fails_when_retries_run_out(web):
    with run_fake_engine("llamacpp") as engine:
        add_pool("p1", engine.url)
        client = web(ORCHD_DISPATCH_RETRIES="0")
        task_id = client.submit(prompt="[[fault:status=503]]").json()["task_id"]

        stream = read_stream(client.server.url, client.token, task_id)

    assert stream.terminal.event == "error"
    assert stream.terminal.data["code"] == "WORKER_RESET"
    assert "token" not in stream.names


def test_a_stalled_engine_ends_with_decode_timeout(web):
    with run_fake_engine("llamacpp") as engine:
        add_pool("p1", engine.url)
        client = web(ORCHD_IDLE_TIMEOUT_S="1")
        task_id = client.submit(prompt="[[fault:stall_after=2]]", max_tokens=20).json()["task_id"]

        stream = read_stream(client.server.url, client.token, task_id)

    assert stream.names.count("token") == 2
    assert stream.terminal.event == "error"
    assert stream.terminal.data["code"] == "DECODE_TIMEOUT"
    assert stream.terminal.data["retriable"] is False


def test_a_node_going_offline_ends_its_running_tasks_with_worker_reset(web):
    with run_fake_engine("llamacpp", tokens_per_s=10) as engine:
        add_pool("p1", engine.url, node_id="gpu-1")
        client = web()
        task_id = client.submit(max_tokens=100).json()["task_id"]
        url = f"{client.server.url}/v2/tasks/{task_id}/events"
        with httpx.stream("GET", url, headers={"Authorization": f"Bearer {client.token}"}, timeout=30) as response:
            lines = response.iter_lines()
            parse_sse(lines, Stream(), stop_after=2)
            Node.objects.filter(id="gpu-1").update(status=NodeStatus.OFFLINE)
            rest = parse_sse(lines, Stream())

    assert rest.terminal.event == "error"
    assert rest.terminal.data["code"] == "WORKER_RESET"
    assert client.status(task_id)["state"] == "failed"


@pytest.mark.parametrize("policy", ["reject", "drop-lru"])
def test_a_full_queue_answers_429_under_each_policy(web, policy):
    with run_fake_engine("llamacpp", slots=1, tokens_per_s=5) as engine:
        add_pool("p1", engine.url, slots=1)
        client = web(ORCHD_ADMISSION_CAPACITY="2", ORCHD_ADMISSION_POLICY=policy)
        running = client.submit(max_tokens=50).json()["task_id"]
        wait_until(lambda: client.status(running)["state"] in ("dispatched", "running"), what="first task running")
        first = client.submit(priority="batch").json()["task_id"]
        client.submit(priority="batch")

        if policy == "reject":
            refused = client.submit(priority="batch")
            assert refused.status_code == 429
            body = refused.json()
            assert (body["code"], body["policy_label"], body["retriable"]) == ("ADMISSION_REJECT", "reject", True)
            assert int(refused.headers["Retry-After"]) >= 1
            assert refused.headers["X-Backoff-Ms"] == str(body["retry_after_ms"])
        else:
            admitted = client.submit(priority="interactive")
            assert admitted.status_code == 202, admitted.text
            dropped = read_stream(client.server.url, client.token, first)
            assert dropped.terminal.event == "error"
            assert dropped.terminal.data["code"] == "QUEUE_FULL_DROP_LRU"
            assert client.status(first)["state"] == "dropped"
            # nothing of lower or equal priority left to drop for a batch newcomer? the queue holds
            # one batch and one interactive task now, so a batch newcomer drops the remaining batch task
        client.cancel(running)


def test_drop_lru_refuses_when_nothing_of_lower_or_equal_priority_is_queued(web):
    with run_fake_engine("llamacpp", slots=1, tokens_per_s=5) as engine:
        add_pool("p1", engine.url, slots=1)
        client = web(ORCHD_ADMISSION_CAPACITY="1", ORCHD_ADMISSION_POLICY="drop-lru")
        running = client.submit(max_tokens=50).json()["task_id"]
        wait_until(lambda: client.status(running)["state"] in ("dispatched", "running"), what="first task running")
        client.submit(priority="interactive")

        refused = client.submit(priority="batch")

        assert refused.status_code == 429
        assert refused.json()["code"] == "QUEUE_FULL_DROP_LRU"
        assert refused.json()["policy_label"] == "drop-lru"
        client.cancel(running)


def test_a_deadline_passing_while_queued_expires_the_task(web):
    with run_fake_engine("llamacpp", slots=1, tokens_per_s=5) as engine:
        add_pool("p1", engine.url, slots=1)
        client = web()
        running = client.submit(max_tokens=50).json()["task_id"]
        wait_until(lambda: client.status(running)["state"] in ("dispatched", "running"), what="first task running")
        waiting = client.submit(deadline_ms=500).json()["task_id"]

        stream = read_stream(client.server.url, client.token, waiting)

        assert stream.terminal.event == "error"
        assert stream.terminal.data["code"] == "DEADLINE_UNMET"
        assert client.status(waiting)["state"] == "expired"
        client.cancel(running)


def test_a_client_that_disconnects_and_stays_away_gets_its_task_canceled(web):
    with run_fake_engine("llamacpp", tokens_per_s=10) as engine:
        add_pool("p1", engine.url)
        client = web(ORCHD_DETACH_GRACE_S="1")
        task_id = client.submit(max_tokens=200).json()["task_id"]
        read_stream(client.server.url, client.token, task_id, stop_after_tokens=2)  # then hang up

        status = wait_until(
            lambda: (s := client.status(task_id))["state"] == "canceled" and s, timeout_s=15, what="abandoned"
        )
        engine.wait_for_stats(timeout=5, active=0)

    assert status["cancel_reason"] == "abandoned"


def test_a_task_nobody_attaches_to_is_canceled_after_the_attach_timeout(web):
    with run_fake_engine("llamacpp", tokens_per_s=5) as engine:
        add_pool("p1", engine.url)
        client = web(ORCHD_ATTACH_TIMEOUT_S="1")
        task_id = client.submit(max_tokens=200).json()["task_id"]

        status = wait_until(
            lambda: (s := client.status(task_id))["state"] == "canceled" and s, timeout_s=15, what="abandoned"
        )

    assert status["cancel_reason"] == "abandoned"


def test_a_drain_deadline_ends_running_tasks_with_worker_reset(web):
    with run_fake_engine("llamacpp", tokens_per_s=10) as engine:
        add_pool("p1", engine.url)
        client = web()
        task_id = client.submit(max_tokens=200).json()["task_id"]
        wait_until(lambda: client.status(task_id)["state"] == "running", what="running")

        assert client.http.post("/v2/pools/p1/drain", json={"deadline_ms": 500}).status_code == 202
        refused = client.submit(max_tokens=5)
        stream = read_stream(client.server.url, client.token, task_id)

    assert refused.status_code == 503, "a draining pool takes no new tasks at once"
    assert stream.terminal.event == "error"
    assert stream.terminal.data["code"] == "WORKER_RESET"
    assert stream.terminal.data["policy_label"] == "drain"
