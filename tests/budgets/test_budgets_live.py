"""Budgets on the live task path: `budget` finish reason, headers and metrics frames, session deletion."""

from __future__ import annotations

import pytest
from django.utils import timezone

from orchestrator.auth.models import ApiToken
from orchestrator.sessions.models import Session
from orchestrator.sessions.services import open_session_turn
from tests.engines import run_fake_engine
from tests.support.processes import wait_until
from tests.support.web import read_stream
from tests.tasks.conftest import add_pool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_task_clamped_by_its_budget_ends_with_finish_reason_budget(web):
    with run_fake_engine("llamacpp", tokens_per_s=40) as engine:
        add_pool("p1", engine.url)
        open_session_turn("s-budget", timezone.now())
        Session.objects.filter(id="s-budget").update(tokens_budget=30, turns=0)
        client = web()

        admitted = client.submit(session_id="s-budget", max_tokens=100)
        stream = read_stream(client.server.url, client.token, admitted.json()["task_id"])

    assert admitted.headers["X-Budget-Tokens-Remaining"] == "0"
    assert stream.names.count("token") == 30
    assert stream.terminal.data["finish_reason"] == "budget"
    assert "x-budget-tokens-remaining" in stream.headers
    budget_frames = [e.data for e in stream.events if e.event == "metrics" and "tokens_budget_remaining" in e.data]
    assert budget_frames, "metrics frames report the remaining budget"
    assert all(0 <= frame["tokens_budget_remaining"] <= 30 for frame in budget_frames)
    session = wait_until(lambda: (s := Session.objects.get(id="s-budget")).tokens_reserved == 0 and s, what="settled")
    assert session.tokens_spent == 30
    token = ApiToken.objects.get(name="alice")
    assert (token.tokens_spent, token.tokens_reserved) == (30, 0)


def test_deleting_a_session_with_a_running_task_lets_the_task_finish(web):
    with run_fake_engine("llamacpp", tokens_per_s=20) as engine:
        add_pool("p1", engine.url)
        client = web()
        task_id = client.submit(session_id="s-gone", max_tokens=20).json()["task_id"]
        wait_until(lambda: client.status(task_id)["state"] == "running", what="running")

        assert client.http.delete("/v2/sessions/s-gone").status_code == 204
        stream = read_stream(client.server.url, client.token, task_id)

        assert stream.terminal.event == "end"
        assert stream.terminal.data["tokens_out"] == 20
        assert client.http.get("/v2/sessions/s-gone").status_code == 404
        token = wait_until(lambda: (t := ApiToken.objects.get(name="alice")).tokens_spent == 20 and t, what="spend")
    assert token.tokens_reserved == 0, "the token is still charged, and its reservation released"
