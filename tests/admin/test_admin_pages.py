"""Every model is in the admin and its pages render; tokens made there are shown once."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from nodes.models import Node, NodeStatus
from orchestrator.auth.models import ApiToken
from pools.models import Pool

pytestmark = pytest.mark.django_db

OURS = ("orchd_auth", "orchd_sessions", "artifacts", "tasks", "catalog", "nodes", "pools", "audit")


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("root", "", "pw")
    client.force_login(user)
    return client


def test_every_model_of_ours_is_registered():
    models = [model for model in apps.get_models() if model._meta.app_label in OURS]

    missing = [model.__name__ for model in models if model not in admin.site._registry]

    assert not missing


def test_every_changelist_renders(staff):
    node = Node.objects.create(id="gpu-1", status=NodeStatus.ONLINE)
    Pool.objects.create(id="p1", node=node, engine="llamacpp", engine_url="http://x", model_refs=["m"])

    for model in admin.site._registry:
        opts = model._meta
        response = staff.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert response.status_code == 200, (opts.label, response.status_code)


def test_node_and_pool_detail_pages_render(staff):
    node = Node.objects.create(id="gpu-1", status=NodeStatus.ONLINE)
    Pool.objects.create(id="p1", node=node, engine="llamacpp", engine_url="http://x", model_refs=["m"])

    assert staff.get(reverse("admin:nodes_node_change", args=["gpu-1"])).status_code == 200
    assert staff.get(reverse("admin:pools_pool_change", args=["p1"])).status_code == 200


def test_a_token_created_in_the_admin_is_shown_once_and_stored_hashed(staff):
    response = staff.post(
        reverse("admin:orchd_auth_apitoken_add"), {"name": "ci", "role": "client", "node_id": ""}, follow=True
    )

    assert response.status_code == 200
    shown = re.findall(r"orchd_[A-Za-z0-9_-]{43}", response.content.decode())
    assert len(set(shown)) == 1
    token = ApiToken.objects.get(name="ci")
    assert token.token_hash == hashlib.sha256(shown[0].encode()).hexdigest()
    again = staff.get(reverse("admin:orchd_auth_apitoken_change", args=[token.pk]))
    assert shown[0] not in again.content.decode()


def test_the_drain_action_calls_the_drain_service(staff):
    node = Node.objects.create(id="gpu-1", status=NodeStatus.ONLINE)
    Pool.objects.create(id="p1", node=node, engine="llamacpp", engine_url="http://x", ready=True)

    # The action asks for a deadline first (console.actions.confirmed); this is the confirmed step.
    staff.post(
        reverse("admin:pools_pool_changelist"),
        {"action": "drain", "_selected_action": ["p1"], "confirm": "yes", "deadline_s": ""},
    )

    assert Pool.objects.get(id="p1").desired_draining is True
    assert Pool.objects.get(id="p1").drain_started_at is not None
