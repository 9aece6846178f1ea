"""Nodes in the console: status filter, heartbeat age, pools inline, a confirmed deregister."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from nodes.models import Node, NodeStatus
from orchestrator.audit.models import AuditEvent
from pools.models import Pool
from tests.console.conftest import make_pool

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:nodes_node_changelist")


def test_it_filters_by_status_and_shows_the_heartbeat_age(olivia):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        Node.objects.create(id="gpu-on", status=NodeStatus.ONLINE, last_heartbeat_at=timezone.now())
        Node.objects.create(id="gpu-stale", status=NodeStatus.STALE, last_heartbeat_at=timezone.now())
        clock.shift(timedelta(seconds=25))
        page = olivia.get(CHANGELIST + "?status__exact=stale").content.decode()

    assert "gpu-stale" in page
    assert "gpu-on" not in page
    assert "25 s ago" in page


def test_the_node_page_lists_its_pools(olivia):
    make_pool("p1", node_id="gpu-1", active_leases=1)

    page = olivia.get(reverse("admin:nodes_node_change", args=["gpu-1"])).content.decode()

    assert "p1" in page
    assert "1/4" in page


def test_deregister_asks_first_then_removes_the_node_and_its_pools(olivia):
    make_pool("p1", node_id="gpu-1")

    question = olivia.post(CHANGELIST, {"action": "deregister", "_selected_action": ["gpu-1"]})
    assert b"leave placement" in question.content
    assert Node.objects.filter(id="gpu-1").exists()

    olivia.post(CHANGELIST, {"action": "deregister", "_selected_action": ["gpu-1"], "confirm": "yes"})

    assert not Node.objects.filter(id="gpu-1").exists()
    assert not Pool.objects.filter(id="p1").exists()
    event = AuditEvent.objects.get(action="node.deregister")
    assert (event.actor, event.target_id, event.outcome) == ("olivia", "gpu-1", "success")
