"""Admission checks in SPEC order, each with its envelope; idempotency; persistence before the 202."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from catalog.models import CatalogModel
from nodes.models import Node, NodeStatus
from orchestrator import metrics
from orchestrator.tasks.models import ServiceTime, Task, TaskState
from tests.conftest import assert_envelope
from tests.tasks.conftest import add_pool, task_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool():
    return add_pool("p1", "http://127.0.0.1:9", slots=2, ctx_max=4096)


def submit(api, **overrides):
    return api.post("/v2/tasks", task_body(**overrides))


def test_it_admits_and_persists_a_task(bob, pool):
    response = submit(bob, task_id="t-ok")

    assert response.status_code == 202, response.content
    task = Task.objects.get(id="t-ok")
    assert task.state == TaskState.QUEUED
    assert response.json()["queue_position"] == 0
    assert response.json()["predicted_start_ms"] == 0
    assert response["Location"] == "/v2/tasks/t-ok"


def test_retrying_the_same_body_answers_the_same_202(bob, pool):
    first = submit(bob, task_id="t-same", seed=1)
    second = bob.post("/v2/tasks", {**task_body(task_id="t-same", seed=1)})

    assert second.status_code == 202
    assert second.json() == first.json()
    assert Task.objects.count() == 1


def test_the_same_task_id_with_another_body_is_409(bob, pool):
    submit(bob, task_id="t-dup", max_tokens=5)

    assert_envelope(submit(bob, task_id="t-dup", max_tokens=6), 409, "CONFLICT")


def test_unknown_extra_fields_are_ignored(bob, pool):
    assert submit(bob, task_id="t-extra", surprise={"a": 1}).status_code == 202


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"workload": "poetry"}, "workload"),
        ({"engine": "ollama"}, "engine"),
        ({"priority": "urgent"}, "priority"),
        ({"ctx": 0}, "ctx"),
        ({"ctx": "512"}, "ctx"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"deadline_ms": -5}, "deadline_ms"),
        ({"task_id": "x" * 129}, "task_id"),
        ({"task_id": "a/b"}, "task_id"),
        ({"model_ref": "../etc/passwd"}, "model_ref"),
        ({"model_ref": "/abs"}, "model_ref"),
        ({"placement": {"mode": "pin"}}, "placement"),
        ({"placement": {"mode": "teleport"}}, "placement"),
        ({"kv_hint": "hot"}, "kv_hint"),
        ({"determinism": "maybe"}, "determinism"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(bob, pool, change, field):
    body = assert_envelope(bob.post("/v2/tasks", {**task_body(), **change}), 400, "INVALID_PARAMS")

    assert field in body["details"]
    assert Task.objects.count() == 0


@pytest.mark.parametrize(
    "missing",
    ["task_id", "session_id", "workload", "model_ref", "engine", "ctx", "priority", "max_tokens", "deadline_ms"],
)
def test_each_required_field_is_required(bob, pool, missing):
    body = task_body()
    del body[missing]

    assert missing in assert_envelope(bob.post("/v2/tasks", body), 400, "INVALID_PARAMS")["details"]


def test_a_completion_needs_a_prompt_and_an_embedding_inputs(bob, pool):
    body = task_body()
    del body["prompt"]
    assert "prompt" in assert_envelope(bob.post("/v2/tasks", body), 400, "INVALID_PARAMS")["details"]
    assert "inputs" in assert_envelope(submit(bob, workload="embedding"), 400, "INVALID_PARAMS")["details"]


@pytest.mark.parametrize("raw", [b"{", b"[]", b'"text"', b"", b"\xff\xfe", b'{"ctx": NaN}'])
def test_malformed_bodies_are_400(bob, pool, raw):
    assert_envelope(bob.post("/v2/tasks", raw=raw), 400, "INVALID_PARAMS")


def test_a_one_megabyte_junk_body_is_400(bob, pool):
    assert_envelope(bob.post("/v2/tasks", raw=b"x" * (1024 * 1024)), 400, "INVALID_PARAMS")


def test_ctx_over_the_largest_pool_context_is_400(bob, pool):
    body = assert_envelope(submit(bob, ctx=8192), 400, "INVALID_PARAMS")
    assert "ctx" in body["details"]


def test_ctx_falls_back_to_the_configured_maximum_without_pool_contexts(bob, settings):
    add_pool("p1", "http://127.0.0.1:9", ctx_max=None)
    settings.ORCHD_CTX_MAX = 1000

    assert_envelope(submit(bob, ctx=1001), 400, "INVALID_PARAMS")
    assert submit(bob, ctx=1000).status_code == 202


def test_max_tokens_over_the_maximum_is_400(bob, pool, settings):
    settings.ORCHD_MAX_TOKENS_MAX = 100

    assert "max_tokens" in assert_envelope(submit(bob, max_tokens=101), 400, "INVALID_PARAMS")["details"]


def test_a_retired_model_is_409_model_deprecated(bob, pool):
    CatalogModel.objects.create(id="tiny", state="Retired")

    assert_envelope(submit(bob), 409, "MODEL_DEPRECATED")


def test_an_untrusted_model_is_400(bob, pool):
    CatalogModel.objects.create(id="tiny", trust_policy={"mode": "strict"})

    assert_envelope(submit(bob), 400, "UNTRUSTED_ARTIFACT")


def test_a_pinned_unknown_pool_is_400_and_an_unready_one_503(bob, pool):
    add_pool("p2", "http://127.0.0.1:9", ready=False)

    assert_envelope(submit(bob, placement={"mode": "pin", "pin_pool_id": "nope"}), 400, "INVALID_PARAMS")
    body = assert_envelope(submit(bob, placement={"mode": "pin", "pin_pool_id": "p2"}), 503, "POOL_UNREADY")
    assert body["retriable"] is True


def test_no_serving_pool_is_503_pool_unavailable_with_retry_after(bob, pool):
    response = submit(bob, model_ref="other-model")

    body = assert_envelope(response, 503, "POOL_UNAVAILABLE")
    assert body["retriable"] is True
    assert int(response["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "break_it",
    [
        lambda: Node.objects.update(status=NodeStatus.OFFLINE),
        lambda: Node.objects.update(status=NodeStatus.STALE),
        lambda: __import__("pools.models").models.Pool.objects.update(desired_draining=True),
        lambda: __import__("pools.models").models.Pool.objects.update(ready=False),
    ],
)
def test_offline_stale_draining_or_unready_pools_do_not_count(bob, pool, break_it):
    break_it()

    assert_envelope(submit(bob), 503, "POOL_UNAVAILABLE")


def test_the_turn_budget_of_a_session_is_enforced(bob, pool, settings):
    settings.ORCHD_SESSION_MAX_TURNS = 2
    submit(bob, session_id="chatty")
    submit(bob, session_id="chatty")

    body = assert_envelope(submit(bob, session_id="chatty"), 429, "BUDGET_EXCEEDED")
    assert body["policy_label"] == "budget.turns"


def test_a_deadline_that_observed_service_times_say_cannot_be_met_is_400(bob, pool):
    ServiceTime.objects.create(
        model_ref="tiny", pool_id="p1", first_token_ms=100, decode_ms_per_token=10, total_ms=5000
    )
    for _ in range(2):
        submit(bob)  # fill both slots' worth of queue ahead

    body = assert_envelope(submit(bob, deadline_ms=1000), 400, "DEADLINE_UNMET")
    assert body["policy_label"] == "deadline"


def test_a_deadline_is_never_refused_on_a_guess(bob, pool):
    for _ in range(10):
        submit(bob)

    assert submit(bob, deadline_ms=1).status_code == 202


def test_predictions_use_queue_position_slots_and_observed_times(bob, pool):
    ServiceTime.objects.create(
        model_ref="tiny", pool_id="p1", first_token_ms=100, decode_ms_per_token=10, total_ms=2000
    )
    answers = [submit(bob).json() for _ in range(5)]

    assert [a["queue_position"] for a in answers] == [0, 1, 2, 3, 4]
    # two free slots: positions 0-1 start now, 2-3 after one service time, 4 after two
    assert [a["predicted_start_ms"] for a in answers] == [0, 0, 2000, 2000, 4000]


def test_interactive_tasks_queue_ahead_of_batch(bob, pool):
    submit(bob, priority="batch")
    submit(bob, priority="batch")

    assert submit(bob, priority="interactive").json()["queue_position"] == 0


def test_a_full_queue_rejects_with_retry_after(bob, pool, settings):
    settings.ORCHD_ADMISSION_CAPACITY = 2
    submit(bob)
    submit(bob)
    before = metrics.tasks_rejected_total.labels(engine="llamacpp", reason="ADMISSION_REJECT")._value.get()

    response = submit(bob)

    body = assert_envelope(response, 429, "ADMISSION_REJECT")
    assert body["policy_label"] == "reject"
    assert response["Retry-After"] == str(max(1, -(-body["retry_after_ms"] // 1000)))
    assert metrics.tasks_rejected_total.labels(engine="llamacpp", reason="ADMISSION_REJECT")._value.get() == before + 1


def test_drop_lru_drops_the_oldest_lowest_priority_task(bob, pool, settings):
    settings.ORCHD_ADMISSION_CAPACITY = 3
    settings.ORCHD_ADMISSION_POLICY = "drop-lru"
    old_batch = submit(bob, priority="batch").json()["task_id"]
    submit(bob, priority="batch")
    submit(bob, priority="interactive")

    assert submit(bob, priority="interactive").status_code == 202

    assert Task.objects.get(id=old_batch).state == TaskState.DROPPED
    assert Task.objects.queued().count() == 3


def test_a_batch_newcomer_never_drops_an_interactive_task(bob, pool, settings):
    settings.ORCHD_ADMISSION_CAPACITY = 1
    settings.ORCHD_ADMISSION_POLICY = "drop-lru"
    submit(bob, priority="interactive")

    body = assert_envelope(submit(bob, priority="batch"), 429, "QUEUE_FULL_DROP_LRU")
    assert body["policy_label"] == "drop-lru"


def test_admission_needs_a_client_token(api, alice_token, pool):
    assert_envelope(submit(api), 401, "MISSING_TOKEN")


def test_the_status_of_a_queued_task_has_its_position(bob, pool):
    submit(bob, task_id="t-a")
    submit(bob, task_id="t-b")

    status = bob.get("/v2/tasks/t-b").json()

    assert status["state"] == "queued"
    assert status["queue_position"] == 1
    assert {
        "task_id",
        "state",
        "priority",
        "model_ref",
        "engine",
        "pool_id",
        "node_id",
        "tokens_out",
        "created_at",
        "started_at",
        "finished_at",
    } <= set(status)


def test_tasks_list_newest_first_and_filter_by_state_and_session(bob, pool):
    submit(bob, task_id="t-1", session_id="s-a")
    submit(bob, task_id="t-2", session_id="s-b")
    Task.objects.filter(id="t-1").update(created_at=timezone.now() - timedelta(minutes=1))

    listed = bob.get("/v2/tasks").json()
    assert [t["task_id"] for t in listed["results"]] == ["t-2", "t-1"]
    assert [t["task_id"] for t in bob.get("/v2/tasks?session_id=s-a").json()["results"]] == ["t-1"]
    assert bob.get("/v2/tasks?state=completed").json()["count"] == 0
    assert_envelope(bob.get("/v2/tasks?state=bogus"), 400, "INVALID_PARAMS")


def test_an_unknown_or_invalid_task_id_is_404(bob):
    assert_envelope(bob.get("/v2/tasks/nope"), 404, "NOT_FOUND")
    assert_envelope(bob.get("/v2/tasks/a..b"), 404, "NOT_FOUND")
