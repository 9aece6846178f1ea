"""Session budgets at admission: refuse when spent, clamp to what remains, reserve under concurrency."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from catalog.models import CatalogModel
from orchestrator.budgets.ledger import settle
from orchestrator.sessions.models import Session
from orchestrator.sessions.services import open_session_turn
from orchestrator.tasks.lifecycle import UNSETTLED_GRACE, cancel_task, expire_overdue_tasks, settle_ended_unrun
from orchestrator.tasks.models import Task
from tests.conftest import assert_envelope
from tests.tasks.conftest import add_pool, task_body

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def pool():
    return add_pool("p1", "http://127.0.0.1:9", slots=4)


def session(session_id="s-b", **budgets):
    open_session_turn(session_id, timezone.now())
    Session.objects.filter(id=session_id).update(turns=0, **budgets)
    return session_id


def submit(api, **overrides):
    return api.post("/v2/tasks", task_body(**{"session_id": "s-b", **overrides}))


@pytest.mark.parametrize(
    ("budgets", "label"),
    [
        ({"tokens_budget": 10, "tokens_spent": 10}, "budget.tokens"),
        ({"time_budget_ms": 1000, "time_spent_ms": 1000}, "budget.time"),
        ({"cost_budget": Decimal("0.5"), "cost_spent": Decimal("0.5")}, "budget.cost"),
    ],
)
def test_a_spent_session_budget_is_429_with_its_policy_label(bob, budgets, label):
    session(**budgets)

    body = assert_envelope(submit(bob), 429, "BUDGET_EXCEEDED")

    assert body["policy_label"] == label
    assert body["retriable"] is False
    assert not Task.objects.exists()


def test_max_tokens_is_clamped_to_what_remains_and_reserved(bob):
    session(tokens_budget=5)

    response = submit(bob, max_tokens=20)

    assert response.status_code == 202
    task = Task.objects.get()
    assert (task.max_tokens, task.max_tokens_requested, task.reserved_tokens) == (5, 20, 5)
    assert response["X-Budget-Tokens-Remaining"] == "0"
    assert Session.objects.get(id="s-b").tokens_reserved == 5


def test_concurrent_tasks_cannot_overspend_a_session(bob):
    session(tokens_budget=10)

    first = submit(bob, max_tokens=8)
    second = submit(bob, max_tokens=8)
    third = submit(bob, max_tokens=8)

    assert (first.status_code, second.status_code) == (202, 202)
    assert [t.max_tokens for t in Task.objects.order_by("created_at")] == [8, 2]
    assert assert_envelope(third, 429, "BUDGET_EXCEEDED")["policy_label"] == "budget.tokens"


def test_unlimited_budgets_send_no_budget_headers(bob):
    response = submit(bob)

    assert response.status_code == 202
    assert not [name for name in response.headers if name.lower().startswith("x-budget-")]


def test_remaining_budgets_are_reported_in_the_202_headers(bob):
    session(tokens_budget=100, time_budget_ms=5000, cost_budget=Decimal("2"))
    CatalogModel.objects.create(id="tiny", cost_per_1k_tokens=Decimal("10"))

    response = submit(bob, max_tokens=30)

    assert response["X-Budget-Tokens-Remaining"] == "70"
    assert response["X-Budget-Time-Remaining-Ms"] == "5000"
    assert response["X-Budget-Cost-Remaining"] == "1.7"


def test_the_cost_budget_clamps_tokens_by_the_models_price(bob):
    CatalogModel.objects.create(id="tiny", cost_per_1k_tokens=Decimal("100"))  # 0.1 per token
    session(cost_budget=Decimal("0.5"))

    submit(bob, max_tokens=50)

    task = Task.objects.get()
    assert task.max_tokens == 5
    assert task.reserved_cost == Decimal("0.5")


def test_settling_turns_the_reservation_into_spend_once(bob):
    CatalogModel.objects.create(id="tiny", cost_per_1k_tokens=Decimal("2"))
    session(tokens_budget=100)
    submit(bob, max_tokens=40)
    task = Task.objects.get()

    assert settle(task.id, 12, 300, Decimal("0.002")) is True
    assert settle(task.id, 12, 300, Decimal("0.002")) is False

    stored = Session.objects.get(id="s-b")
    assert (stored.tokens_spent, stored.tokens_reserved, stored.time_spent_ms) == (12, 0, 300)
    assert stored.cost_spent == Decimal("0.024")
    assert stored.cost_reserved == Decimal(0)
    assert stored.tokens_budget_remaining == 88


@pytest.mark.parametrize("end", ["cancel", "expire"])
def test_a_task_that_never_runs_gives_its_reservation_back(bob, end):
    session(tokens_budget=10)
    submit(bob, max_tokens=10, deadline_ms=1)
    task = Task.objects.get()

    if end == "cancel":
        cancel_task(task.id, "client")
    else:
        expire_overdue_tasks(timezone.now() + timedelta(seconds=1))

    stored = Session.objects.get(id="s-b")
    assert (stored.tokens_reserved, stored.tokens_spent) == (0, 0)
    assert submit(bob, max_tokens=10).status_code == 202


def test_a_dropped_task_gives_its_reservation_back_after_the_commit(bob, settings, django_capture_on_commit_callbacks):
    settings.ORCHD_ADMISSION_CAPACITY = 1
    settings.ORCHD_ADMISSION_POLICY = "drop-lru"
    session(tokens_budget=100)
    submit(bob, max_tokens=10, priority="batch")

    with django_capture_on_commit_callbacks(execute=False) as hooks:
        submit(bob, max_tokens=10, priority="interactive")
    assert Session.objects.get(id="s-b").tokens_reserved == 20  # not under the capacity lock
    for hook in hooks:
        hook()

    assert Session.objects.get(id="s-b").tokens_reserved == 10


def test_a_dropped_task_whose_release_was_lost_is_settled_by_the_sweep(bob, settings):
    settings.ORCHD_ADMISSION_CAPACITY = 1
    settings.ORCHD_ADMISSION_POLICY = "drop-lru"
    session(tokens_budget=100)
    dropped = submit(bob, max_tokens=10, priority="batch").json()["task_id"]
    submit(bob, max_tokens=10, priority="interactive")  # its after-commit release never runs here
    ended = Task.objects.get(id=dropped).finished_at
    assert ended is not None
    assert Session.objects.get(id="s-b").tokens_reserved == 20

    assert settle_ended_unrun(ended + UNSETTLED_GRACE - timedelta(seconds=1)) == []  # not overdue yet
    assert settle_ended_unrun(ended + UNSETTLED_GRACE) == [dropped]

    assert Session.objects.get(id="s-b").tokens_reserved == 10
    assert settle_ended_unrun(ended + UNSETTLED_GRACE) == []  # settled once


def test_new_sessions_take_their_budgets_from_settings(bob, settings):
    settings.ORCHD_SESSION_TOKENS_BUDGET = 7

    response = submit(bob, session_id="fresh", max_tokens=20)

    assert response["X-Budget-Tokens-Remaining"] == "0"
    assert Task.objects.get().max_tokens == 7
    assert bob.get("/v2/sessions/fresh").json()["tokens_budget_remaining"] == 0


def test_the_session_endpoint_counts_reservations(bob):
    session(tokens_budget=50)
    submit(bob, max_tokens=20)

    assert bob.get("/v2/sessions/s-b").json()["tokens_budget_remaining"] == 30


def test_a_task_from_before_a_session_was_deleted_does_not_touch_the_new_session(bob):
    from orchestrator.sessions.services import delete_session

    session(tokens_budget=100)
    submit(bob, max_tokens=60)
    old = Task.objects.get()
    delete_session("s-b")
    submit(bob, max_tokens=30)  # a fresh session, with the default (unlimited) budgets

    settle(old.id, 60, 10, Decimal(0))

    fresh = Session.objects.get(id="s-b")
    assert (fresh.tokens_spent, fresh.tokens_reserved) == (0, 30), "only the new task's reservation"
