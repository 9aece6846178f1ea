"""Console fixtures. Actors in the console: olivia operates (group `operators`), victor only views
(group `viewers`). In the API, alice is still the operator token and bob the client token."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from nodes.models import Node, NodeStatus
from orchestrator.tasks.models import PRIORITY_RANK, Task, TaskState
from pools.models import Pool

GROUPS_MIGRATION = importlib.import_module("orchestrator.console.migrations.0001_operator_groups")


@pytest.fixture
def groups(db: None) -> dict[str, Group]:
    """The groups the console migration creates (again, when a transactional test flushed them)."""
    if Group.objects.filter(name__in=("viewers", "operators")).count() < 2:
        GROUPS_MIGRATION.create_groups(apps, None)
    return {group.name: group for group in Group.objects.filter(name__in=("viewers", "operators"))}


def staff_user(username: str, group: Group | None, *, is_staff: bool = True) -> Any:
    user = get_user_model().objects.create_user(username, password="pw", is_staff=is_staff)
    if group is not None:
        user.groups.add(group)
    return user


@pytest.fixture
def olivia(client: Client, groups: dict[str, Group]) -> Client:
    """An operator, logged in."""
    client.force_login(staff_user("olivia", groups["operators"]))
    return client


@pytest.fixture
def victor(client: Client, groups: dict[str, Group]) -> Client:
    """A viewer, logged in."""
    client.force_login(staff_user("victor", groups["viewers"]))
    return client


def make_pool(pool_id: str, node_id: str = "gpu-1", **fields: Any) -> Pool:
    node, _ = Node.objects.get_or_create(
        id=node_id, defaults={"status": NodeStatus.ONLINE, "last_heartbeat_at": timezone.now()}
    )
    values = {
        "engine": "llamacpp",
        "engine_url": "http://127.0.0.1:9",
        "model_refs": ["tiny"],
        "slots_total": 4,
        "ready": True,
        "last_heartbeat_at": timezone.now(),
        **fields,
    }
    return Pool.objects.create(id=pool_id, node=node, **values)


def make_task(
    task_id: str, state: str = TaskState.QUEUED, *, created_at: datetime | None = None, **fields: Any
) -> Task:
    """A task row as the data plane would leave it in `state` (no stream behind it)."""
    created = created_at or timezone.now()
    priority = fields.pop("priority", "interactive")
    return Task.objects.create(
        id=task_id,
        session_id="s-1",
        workload="completion",
        model_ref=fields.pop("model_ref", "tiny"),
        engine="llamacpp",
        ctx=512,
        priority=priority,
        priority_rank=PRIORITY_RANK[priority],
        max_tokens=16,
        deadline_ms=60_000,
        deadline_at=created + timedelta(minutes=1),
        request_digest="0" * 64,
        created_at=created,
        state=state,
        **fields,
    )


@pytest.fixture
def pool_factory(db: None) -> Callable[..., Pool]:
    return make_pool
