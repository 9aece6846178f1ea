"""The admin index is the fleet dashboard: nodes, pools, queue, charts, failures, recent actions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from nodes.models import Node, NodeStatus
from orchestrator.audit.services import Source, record
from orchestrator.console.dashboard import build_dashboard
from orchestrator.tasks.models import TaskState
from tests.console.conftest import make_pool, make_task

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
PANEL = reverse("admin:console_dashboard_panel")


def test_it_shows_pools_with_slot_bars_badges_and_heartbeat_age(olivia):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        make_pool("p-ready", active_leases=3, slots_total=4)
        make_pool("p-drain", desired_draining=True, drain_started_at=timezone.now())
        clock.shift(timedelta(seconds=4))
        page = olivia.get(INDEX).content.decode()

    assert 'data-pool="p-ready"' in page
    assert "3/4" in page
    assert 'style="width:75%"' in page
    assert 'console-badge console-ok">ready' in page
    assert 'console-badge console-warn">draining' in page
    assert "4 s ago" in page
    assert "draining: 0 task(s) still running" in page


def test_it_counts_nodes_by_status_and_the_queue_by_priority(olivia):
    Node.objects.create(id="n-on", status=NodeStatus.ONLINE)
    Node.objects.create(id="n-stale", status=NodeStatus.STALE)
    Node.objects.create(id="n-off", status=NodeStatus.OFFLINE)
    make_task("q-1")
    make_task("q-2")
    make_task("q-3", priority="batch")

    dashboard = build_dashboard(timezone.now())

    assert [count for _, count in dashboard.nodes] == [0, 1, 1, 1]  # registering, online, stale, offline
    assert [(row.priority, row.depth) for row in dashboard.queue] == [("interactive", 2), ("batch", 1)]
    page = olivia.get(INDEX).content.decode()
    assert 'data-queue="interactive">2<' in page
    assert 'data-queue="batch">1<' in page


def test_tokens_per_second_and_first_token_latency_come_from_the_last_hour(olivia):
    now = timezone.now()
    for number, minutes_ago in enumerate((2, 2, 30, 90)):
        finished = now - timedelta(minutes=minutes_ago)
        make_task(
            f"done-{number}",
            TaskState.COMPLETED,
            created_at=finished - timedelta(seconds=10),
            dispatched_at=finished - timedelta(seconds=9),
            started_at=finished - timedelta(seconds=9, milliseconds=-250),
            finished_at=finished,
            tokens_out=600,
        )

    dashboard = build_dashboard(now)

    assert dashboard.tokens_per_s_now == 4.0  # 1200 tokens in the last 5 minutes
    assert dashboard.first_token_median_ms == 250
    assert dashboard.tokens_chart.startswith("<svg")
    assert "<polyline" in dashboard.first_token_chart or "<circle" in dashboard.first_token_chart


def test_it_lists_recent_failures_with_their_error_codes(olivia):
    make_task("t-bad", TaskState.FAILED, error={"code": "WORKER_RESET", "message": "node lost"}, pool_id="p1")
    make_task("t-late", TaskState.EXPIRED, finished_at=timezone.now())
    make_task("t-fine", TaskState.COMPLETED, finished_at=timezone.now())

    page = olivia.get(INDEX).content.decode()

    assert "t-bad" in page
    assert "WORKER_RESET" in page
    assert "DEADLINE_UNMET" in page
    assert "t-fine" not in page


def test_it_shows_recent_operator_actions(olivia):
    record("olivia", "pool.drain", ("pools.pool", "p-9"), source=Source.ADMIN)

    page = olivia.get(INDEX).content.decode()

    assert "pool.drain" in page
    assert "p-9" in page


def test_the_panel_refreshes_from_its_own_url_with_local_static_files_only(olivia):
    make_pool("p1")

    index = olivia.get(INDEX).content.decode()
    panel = olivia.get(PANEL)

    assert f'data-panel-url="{PANEL}"' in index
    assert "/static/console/dashboard.js" in index
    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', index)
    assert assets
    assert all(asset.startswith("/static/") for asset in assets), assets  # nothing from a CDN
    assert panel.status_code == 200
    assert 'data-pool="p1"' in panel.content.decode()
    assert "<html" not in panel.content.decode()


def test_the_dashboard_needs_a_staff_login(client, db):
    assert client.get(PANEL).status_code == 302
    assert client.get(INDEX).status_code == 302


def test_it_issues_a_bounded_number_of_queries_for_a_big_fleet(olivia, django_assert_max_num_queries):
    now = timezone.now()
    for number in range(120):
        make_pool(f"p-{number}", node_id=f"gpu-{number % 30}")
    for number in range(150):
        make_task(f"t-{number}", TaskState.COMPLETED, finished_at=now, started_at=now, tokens_out=10)
        make_task(f"f-{number}", TaskState.FAILED, error={"code": "WORKER_RESET"})

    with django_assert_max_num_queries(12):
        response = olivia.get(INDEX)

    assert response.status_code == 200
    assert response.content.decode().count("data-pool=") == 120
