"""Two web processes sharing PostgreSQL and Redis: any process streams or cancels any task,
and slot leases hold across processes (run by CI's PostgreSQL + Redis pass)."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest
from django.conf import settings
from django.db import connection

from tests.engines import run_fake_engine
from tests.support.processes import wait_until
from tests.support.web import Stream, parse_sse, read_stream
from tests.tasks.conftest import add_pool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _needs_shared_services():
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("needs DATABASE_URL (PostgreSQL) and REDIS_URL: the processes must share state")


def test_a_task_admitted_on_one_process_streams_from_another_and_cancels_from_the_first(web):
    with run_fake_engine("llamacpp", slots=2, tokens_per_s=20) as engine:
        add_pool("p1", engine.url, slots=2)
        a, b = web("a"), web("b")
        task_id = a.submit(max_tokens=200).json()["task_id"]

        url = f"{b.server.url}/v2/tasks/{task_id}/events"
        with httpx.stream("GET", url, headers={"Authorization": f"Bearer {b.token}"}, timeout=30) as response:
            lines = response.iter_lines()
            before = parse_sse(lines, Stream(), stop_after=3)
            assert a.cancel(task_id).status_code == 204
            after = parse_sse(lines, Stream())
        engine.wait_for_stats(timeout=5, client_disconnects=1, active=0)

    events = before.events + after.events
    assert events[0].event == "started"
    assert events[-1].event == "end"
    assert events[-1].data["canceled"] is True
    assert all(event.id < events[-1].id for event in events if event.event == "token")
    assert b.status(task_id)["state"] == "canceled"


def test_twenty_tasks_on_four_slots_never_run_more_than_four_at_once(web):
    with run_fake_engine("llamacpp", slots=20, tokens_per_s=100) as engine:
        add_pool("p1", engine.url, slots=4)
        servers = [web("a"), web("b")]
        task_ids = [servers[i % 2].submit(max_tokens=30, session_id=f"s{i}").json()["task_id"] for i in range(20)]

        def watch(index_and_id):
            index, task_id = index_and_id
            server = servers[(index + 1) % 2]
            return read_stream(server.server.url, server.token, task_id, timeout_s=120)

        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            streams = list(pool.map(watch, enumerate(task_ids)))
        stats = engine.stats()

    assert all(stream.terminal.event == "end" for stream in streams)
    assert stats["requests"] == 20
    assert stats["max_active_seen"] <= 4, stats
    assert stats["max_active_seen"] == 4, "both processes dispatched up to the pool's size"


def test_leases_are_all_returned(web):
    from pools.models import Pool

    with run_fake_engine("llamacpp", slots=4, tokens_per_s=0) as engine:
        add_pool("p1", engine.url, slots=4)
        a, b = web("a"), web("b")
        ids = [(a if i % 2 else b).submit(max_tokens=5).json()["task_id"] for i in range(12)]
        wait_until(lambda: all(a.status(t)["state"] == "completed" for t in ids), timeout_s=60, what="all completed")

    assert Pool.objects.get(id="p1").active_leases == 0


def test_a_rate_limit_holds_exactly_across_two_processes(web):
    import threading

    from orchestrator.auth.models import ApiToken, Role
    from orchestrator.auth.services import issue_token

    with run_fake_engine("llamacpp", slots=4) as engine:
        add_pool("p1", engine.url, slots=4)
        issued = issue_token("limited", Role.CLIENT)
        ApiToken.objects.filter(pk=issued.token.pk).update(requests_per_minute=10)
        servers = [web("a"), web("b")]
        codes: list[int] = []
        lock = threading.Lock()

        def fire(i: int) -> None:
            server = servers[i % 2]
            from tests.tasks.conftest import task_body

            response = httpx.post(
                f"{server.server.url}/v2/tasks", json=task_body(), headers={"Authorization": f"Bearer {issued.value}"}
            )
            with lock:
                codes.append(response.status_code)

        threads = [threading.Thread(target=fire, args=(i,)) for i in range(30)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert codes.count(202) == 10
    assert codes.count(429) == 20


def test_concurrent_completions_on_two_processes_are_all_charged(web):
    from orchestrator.auth.models import ApiToken
    from orchestrator.sessions.models import Session

    with run_fake_engine("llamacpp", slots=20, tokens_per_s=0) as engine:
        add_pool("p1", engine.url, slots=20)
        servers = [web("a"), web("b")]

        def run(i: int) -> int:
            server = servers[i % 2]
            task_id = server.submit(session_id="shared", max_tokens=5 + i % 7).json()["task_id"]
            return int(read_stream(server.server.url, server.token, task_id, timeout_s=120).terminal.data["tokens_out"])

        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            produced = list(pool.map(run, range(100)))
        session = wait_until(
            lambda: (s := Session.objects.get(id="shared")).tokens_reserved == 0 and s, timeout_s=30, what="settled"
        )

    assert session.tokens_spent == sum(produced)
    assert session.turns == 100
    token = ApiToken.objects.get(name="alice")
    assert (token.tokens_spent, token.tokens_reserved) == (sum(produced), 0)
