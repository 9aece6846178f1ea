from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from nodes.jobs import expire_stale_nodes_job
from nodes.models import Node, NodeStatus
from nodes.services import expire_stale_nodes, record_heartbeat
from orchestrator.auth.services import Principal
from pools.services import PoolReport

pytestmark = pytest.mark.django_db

OPERATOR = Principal(name="alice", role="operator")


@pytest.fixture
def node(settings):
    settings.ORCHD_HEARTBEAT_INTERVAL_MS = 10_000
    settings.ORCHD_NODE_TIMEOUT_MS = 30_000
    Node.objects.create(id="gpu-1")
    record_heartbeat("gpu-1", [], OPERATOR, timezone.now())
    return Node.objects.get(id="gpu-1")


def test_a_node_is_stale_after_two_missed_intervals(node):
    with time_machine.travel(node.last_heartbeat_at + timedelta(seconds=19), tick=False):
        assert expire_stale_nodes(timezone.now()) == {"stale": [], "offline": []}
    with time_machine.travel(node.last_heartbeat_at + timedelta(seconds=21), tick=False):
        assert expire_stale_nodes(timezone.now()) == {"stale": ["gpu-1"], "offline": []}

    assert Node.objects.get(id="gpu-1").status == NodeStatus.STALE


def test_a_node_is_offline_after_the_timeout(node):
    with time_machine.travel(node.last_heartbeat_at + timedelta(seconds=31), tick=False):
        result = expire_stale_nodes(timezone.now())

    assert result["offline"] == ["gpu-1"]
    assert Node.objects.get(id="gpu-1").status == NodeStatus.OFFLINE


def test_running_expiry_twice_changes_nothing_more(node):
    with time_machine.travel(node.last_heartbeat_at + timedelta(seconds=31), tick=False):
        first = expire_stale_nodes(timezone.now())
        second = expire_stale_nodes(timezone.now())

    assert first["offline"] == ["gpu-1"]
    assert second == {"stale": [], "offline": []}


def test_a_heartbeat_between_read_and_update_wins(node):
    """The compare-and-swap misses a node whose deadline moved after it was selected."""
    later = node.last_heartbeat_at + timedelta(seconds=31)
    with time_machine.travel(later, tick=False):
        record_heartbeat("gpu-1", [], OPERATOR, timezone.now())
        result = expire_stale_nodes(timezone.now())

    assert result == {"stale": [], "offline": []}
    assert Node.objects.get(id="gpu-1").status == NodeStatus.ONLINE


def test_a_late_heartbeat_brings_an_offline_node_back(node):
    with time_machine.travel(node.last_heartbeat_at + timedelta(seconds=60), tick=False):
        expire_stale_nodes(timezone.now())
        record_heartbeat("gpu-1", [PoolReport(pool_id="x", ready=True)] * 0, OPERATOR, timezone.now())

    assert Node.objects.get(id="gpu-1").status == NodeStatus.ONLINE


def test_a_registered_node_that_never_heartbeats_goes_offline(settings):
    node = Node.objects.create(id="silent")
    node.stale_at, node.offline_at = node.deadlines_from(timezone.now())
    node.save()

    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=False):
        assert expire_stale_nodes(timezone.now())["offline"] == ["silent"]


def test_the_beat_job_runs_the_expiry(node):
    with time_machine.travel(node.last_heartbeat_at + timedelta(seconds=31), tick=False):
        result = expire_stale_nodes_job.apply().get()

    assert result["offline"] == ["gpu-1"]


def test_the_expiry_job_is_on_the_beat_schedule_every_5_seconds(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["expire-stale-nodes"]

    assert entry == {"task": "nodes.jobs.expire_stale_nodes", "schedule": 5.0}


def test_a_system_check_refuses_a_timeout_within_two_intervals(settings):
    from orchestrator.checks import check_node_liveness

    settings.ORCHD_HEARTBEAT_INTERVAL_MS = 10_000
    settings.ORCHD_NODE_TIMEOUT_MS = 20_000

    assert [message.id for message in check_node_liveness(None)] == ["orchd.E001"]
