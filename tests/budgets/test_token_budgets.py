"""API-token budgets and requests-per-minute limits (SPEC §6)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from orchestrator.auth.models import ApiToken, RateEvent, Role
from orchestrator.auth.services import issue_token
from orchestrator.budgets.ledger import settle
from orchestrator.tasks.models import Task
from tests.conftest import Api, assert_envelope
from tests.tasks.conftest import add_pool, task_body

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def pool():
    return add_pool("p1", "http://127.0.0.1:9", slots=4)


@pytest.fixture
def dave(client):
    """A client whose token carries budgets and a rate limit."""
    issued = issue_token("dave", Role.CLIENT)
    return Api(client, issued.value), issued.token


def test_a_spent_token_budget_is_429(dave):
    api, token = dave
    ApiToken.objects.filter(pk=token.pk).update(tokens_budget=100, tokens_spent=100)

    body = assert_envelope(api.post("/v2/tasks", task_body()), 429, "BUDGET_EXCEEDED")

    assert body["policy_label"] == "budget.tokens"


def test_a_spent_token_cost_budget_is_429(dave):
    api, token = dave
    ApiToken.objects.filter(pk=token.pk).update(cost_budget=Decimal("1"), cost_spent=Decimal("1"))

    assert assert_envelope(api.post("/v2/tasks", task_body()), 429, "BUDGET_EXCEEDED")["policy_label"] == "budget.cost"


def test_the_smaller_of_session_and_token_budgets_applies(dave):
    api, token = dave
    ApiToken.objects.filter(pk=token.pk).update(tokens_budget=6)

    response = api.post("/v2/tasks", task_body(max_tokens=50))

    assert Task.objects.get().max_tokens == 6
    assert response["X-Budget-Tokens-Remaining"] == "0"


def test_spend_is_recorded_on_the_token(dave):
    api, token = dave
    api.post("/v2/tasks", task_body(max_tokens=50))

    settle(Task.objects.get().id, 17, 100, Decimal("0.001"))

    stored = ApiToken.objects.get(pk=token.pk)
    assert (stored.tokens_spent, stored.tokens_reserved) == (17, 0)
    assert stored.cost_spent == Decimal("0.017")


def test_the_rate_limit_admits_exactly_n_per_minute_and_says_when_to_retry(dave, settings):
    settings.REDIS_URL = None  # the database variant; Redis keeps its own clock (see the Redis test)
    api, token = dave
    ApiToken.objects.filter(pk=token.pk).update(requests_per_minute=3)
    start = timezone.now()

    with time_machine.travel(start, tick=False) as clock:
        assert [api.post("/v2/tasks", task_body()).status_code for _ in range(3)] == [202, 202, 202]
        clock.shift(timedelta(seconds=20))
        refused = api.post("/v2/tasks", task_body())

    body = assert_envelope(refused, 429, "ADMISSION_REJECT")
    assert body["policy_label"] == "rate.rpm"
    assert body["retriable"] is True
    # the first admission leaves the window 40 s from now
    assert 39_000 <= body["retry_after_ms"] <= 40_000
    assert refused["Retry-After"] == "40"


def test_the_window_slides(dave, settings):
    settings.REDIS_URL = None
    api, token = dave
    ApiToken.objects.filter(pk=token.pk).update(requests_per_minute=2)
    start = timezone.now()

    with time_machine.travel(start, tick=False) as clock:
        api.post("/v2/tasks", task_body())
        clock.shift(timedelta(seconds=30))
        api.post("/v2/tasks", task_body())
        clock.shift(timedelta(seconds=31))
        third = api.post("/v2/tasks", task_body())
        fourth = api.post("/v2/tasks", task_body())

    assert third.status_code == 202
    assert fourth.status_code == 429


def test_a_refusal_for_another_reason_does_not_use_up_the_rate(dave, settings):
    settings.REDIS_URL = None
    api, token = dave
    ApiToken.objects.filter(pk=token.pk).update(requests_per_minute=1)
    settings.ORCHD_ADMISSION_CAPACITY = 1
    Task.objects.create(
        id="blocker",
        session_id="x",
        workload="completion",
        model_ref="tiny",
        engine="llamacpp",
        ctx=1,
        priority="interactive",
        priority_rank=0,
        max_tokens=1,
        deadline_ms=1000,
        deadline_at=timezone.now() + timedelta(hours=1),
        created_at=timezone.now(),
        request_digest="-",
    )

    assert_envelope(api.post("/v2/tasks", task_body()), 429, "ADMISSION_REJECT")
    Task.objects.filter(id="blocker").delete()

    assert api.post("/v2/tasks", task_body()).status_code == 202
    assert RateEvent.objects.filter(token=token).count() == 1


def test_the_redis_window_is_exact_and_gives_back_refused_admissions(dave, settings):
    import redis

    url = settings.REDIS_URL or "redis://127.0.0.1:6379/13"
    try:
        redis.Redis.from_url(url).ping()
    except redis.RedisError:
        pytest.skip("no Redis reachable")
    settings.REDIS_URL = url
    api, token = dave
    ApiToken.objects.filter(pk=token.pk).update(requests_per_minute=2)

    answers = [api.post("/v2/tasks", task_body()) for _ in range(3)]

    assert [a.status_code for a in answers] == [202, 202, 429]
    body = answers[2].json()
    assert body["policy_label"] == "rate.rpm"
    assert 55_000 <= body["retry_after_ms"] <= 60_000
    assert int(answers[2]["Retry-After"]) in (59, 60)
    assert redis.Redis.from_url(url).zcard(f"{settings.ORCHD_REDIS_PREFIX}:rpm:{token.pk}") == 2


def test_tokens_without_limits_are_not_counted(dave):
    api, token = dave

    for _ in range(5):
        api.post("/v2/tasks", task_body())

    assert not RateEvent.objects.exists()
