"""The operator console in a real browser: log in, watch the fleet, drain, tail a task, cancel, and view only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from nodes.models import Node, NodeStatus
from orchestrator.audit.models import AuditEvent
from orchestrator.audit.services import Source, record
from orchestrator.tasks.models import TaskState
from tests.browser.conftest import copy_to_docs, log_in, screenshot
from tests.console.conftest import make_pool, make_task
from tests.engines import run_fake_engine
from tests.support.live import add_pool
from tests.support.processes import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def seed_a_busy_fleet() -> None:
    """Nodes in each state, pools at various loads, an hour of finished tasks, a queue and some failures."""
    now = timezone.now()
    make_pool("gpu-1-a", node_id="gpu-1", model_refs=["llama-3-8b"], slots_total=8, active_leases=6)
    make_pool("gpu-1-b", node_id="gpu-1", model_refs=["qwen-2-7b"], slots_total=4, active_leases=1)
    make_pool("gpu-2-a", node_id="gpu-2", model_refs=["llama-3-70b"], slots_total=2, active_leases=2)
    make_pool("gpu-3-a", node_id="gpu-3", desired_draining=True, drain_started_at=now, active_leases=1)
    Node.objects.filter(id="gpu-3").update(status=NodeStatus.STALE, last_heartbeat_at=now - timedelta(seconds=25))
    Node.objects.create(id="gpu-4", status=NodeStatus.OFFLINE, last_heartbeat_at=now - timedelta(minutes=7))
    for minute in range(60):
        for slot in range(2 + minute % 3):
            finished = now - timedelta(minutes=59 - minute, seconds=slot * 7)
            make_task(
                f"done-{minute}-{slot}",
                TaskState.COMPLETED,
                created_at=finished - timedelta(seconds=12),
                dispatched_at=finished - timedelta(seconds=11),
                started_at=finished - timedelta(seconds=11) + timedelta(milliseconds=120 + 40 * ((minute * 7) % 5)),
                finished_at=finished,
                tokens_out=300 + 25 * ((minute * 3 + slot) % 8),
            )
    # Queued for a model no pool serves, so the web process's dispatcher leaves them queued.
    for number in range(5):
        make_task(f"waiting-{number}", model_ref="mixtral-8x22b", priority="batch" if number % 2 else "interactive")
    make_task("t-reset", TaskState.FAILED, pool_id="gpu-2-a", error={"code": "WORKER_RESET", "message": "node lost"})
    make_task("t-slow", TaskState.FAILED, pool_id="gpu-1-a", error={"code": "DECODE_TIMEOUT", "message": "idle"})
    make_task("t-late", TaskState.EXPIRED, finished_at=now)
    record("olivia", "pool.drain", ("pools.pool", "gpu-3-a"), source=Source.ADMIN, deadline_ms=300_000)
    record("token:3f9a1c", "task.cancel", ("tasks.task", "t-4411"), source=Source.API)
    record("olivia", "model.verify", ("catalog.catalogmodel", "llama-3-8b"), source=Source.ADMIN)


def test_an_operator_logs_in_to_a_dashboard_that_refreshes_itself(console, console_users, page):
    seed_a_busy_fleet()
    client = console
    page.set_viewport_size({"width": 1400, "height": 1420})

    log_in(page, client.server.url, "olivia")

    assert page.locator("#console-pools tr[data-pool]").count() == 4
    assert page.locator("svg.console-chart polyline").count() >= 2
    assert "WORKER_RESET" in page.inner_text("#console-failures")
    page.wait_for_selector("#console-dashboard[data-refreshed]", state="attached", timeout=15_000)
    copy_to_docs(screenshot(page, "console-dashboard.png"))


def test_draining_a_pool_from_the_admin_shows_in_the_api(console, console_users, page):
    make_pool("p1", node_id="gpu-1")
    client = console
    log_in(page, client.server.url, "olivia")

    page.goto(f"{client.server.url}/admin/pools/pool/")
    page.check("input[name=_selected_action][value=p1]")
    page.select_option("select[name=action]", "drain")
    page.click("button[name=index]")
    page.fill("input[name=deadline_s]", "120")
    page.click("input[name=_console_apply]")

    assert "Draining 1 pool(s)" in page.inner_text("ul.messagelist")
    health = client.http.get("/v2/pools/p1/health").json()
    assert health["draining"] is True
    assert health["ready"] is False
    event = AuditEvent.objects.get(action="pool.drain")
    assert (event.actor, event.source, event.details["deadline_ms"]) == ("olivia", "admin", 120_000)


def test_the_live_view_shows_tokens_arriving_and_a_cancel_from_the_admin_ends_it(console, console_users, page):
    with run_fake_engine("llamacpp", slots=2, tokens_per_s=12, model="tiny") as engine:
        add_pool("p1", engine.url, slots=2)
        client = console
        task_id = client.submit(max_tokens=400, prompt="Tell me about the fleet").json()["task_id"]
        page.context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
        page.set_viewport_size({"width": 1280, "height": 760})
        log_in(page, client.server.url, "olivia")

        page.goto(f"{client.server.url}/admin/tasks/task/{task_id}/live/")
        page.wait_for_function("() => Number(document.getElementById('live-tokens').textContent) >= 8")
        first = int(page.inner_text("#live-tokens"))
        page.wait_for_function(f"() => Number(document.getElementById('live-tokens').textContent) >= {first + 24}")
        assert page.inner_text("#live-state") == "running"
        assert page.inner_text("#live-output").strip()
        copy_to_docs(screenshot(page, "console-live-view.png"))

        # Cancel from the task list in a second tab, while the live view keeps watching.
        admin_tab = page.context.new_page()
        admin_tab.goto(f"{client.server.url}/admin/tasks/task/")
        admin_tab.check(f"input[name=_selected_action][value='{task_id}']")
        admin_tab.select_option("select[name=action]", "cancel")
        admin_tab.click("button[name=index]")
        admin_tab.click("input[name=_console_apply]")

        assert "Canceled 1 task(s)" in admin_tab.inner_text("ul.messagelist")
        page.wait_for_function("() => document.getElementById('live-state').textContent === 'canceled'")
        assert page.inner_text("#live-connection") == "closed"
        assert wait_until(lambda: client.status(task_id)["state"] == "canceled", what="the task canceled")
        engine.wait_for_stats(timeout=10, active=0)


def test_a_viewer_sees_everything_but_no_actions_and_cannot_drain(console, console_users, page):
    make_pool("p1", node_id="gpu-1")
    make_task("t-1", TaskState.RUNNING, pool_id="p1")
    client = console
    log_in(page, client.server.url, "victor")
    base = client.server.url

    assert page.locator("#console-pools tr[data-pool=p1]").count() == 1
    for path in ("/admin/pools/pool/", "/admin/nodes/node/", "/admin/tasks/task/", "/admin/catalog/catalogmodel/"):
        page.goto(base + path)
        assert page.locator("select[name=action]").count() == 0, path
    page.goto(f"{base}/admin/pools/pool/p1/change/")
    assert page.locator("input[type=submit]").count() == 0
    page.goto(f"{base}/admin/tasks/task/t-1/live/")
    assert page.locator("#live-cancel").count() == 0

    csrf = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")
    forged = page.request.post(
        f"{base}/admin/pools/pool/",
        form={"action": "drain", "_selected_action": "p1", "confirm": "yes", "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{base}/admin/pools/pool/"},
    )
    assert forged.status == 200
    assert client.http.get("/v2/pools/p1/health").json()["draining"] is False
