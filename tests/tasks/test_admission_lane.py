"""The admission lane answers `POST /v2/tasks` as the full middleware chain and DRF view do, or stands aside."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponseBase
from django.test import RequestFactory
from prometheus_client import REGISTRY

from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token
from orchestrator.tasks.api import lane
from orchestrator.tasks.models import Task
from tests.tasks.conftest import add_pool, task_body

pytestmark = pytest.mark.django_db

Send = Callable[[HttpRequest], HttpResponseBase | None]


@pytest.fixture
def client_token() -> str:
    add_pool("p1", "http://127.0.0.1:9", slots=2, ctx_max=4096)
    return issue_token("bob", Role.CLIENT).value


def chain() -> Send:
    handler = BaseHandler()
    handler.load_middleware(is_async=False)
    return handler.get_response


def request(token: str | None, body: Any, **extra: Any) -> HttpRequest:
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    content_type = extra.pop("content_type", "application/json")
    return RequestFactory().post("/v2/tasks", raw, content_type=content_type, **headers, **extra)


def http_metrics() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """django-prometheus's request series: counters, and each histogram's count."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for metric in REGISTRY.collect()
        if metric.name.startswith("django_http_")
        for sample in metric.samples
        if sample.name.endswith(("_total", "_count"))
    }


def seen(send: Send, req: HttpRequest, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    """Everything a client and an operator see of one request, with the way's name taken out."""
    before = http_metrics()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = send(req)
    assert response is not None
    after = http_metrics()
    logged = [
        (record.name, record.getMessage(), getattr(record, "status", None), getattr(record, "principal", None))
        for record in caplog.records
        if record.name in ("orchestrator.http", "django.request")
    ]
    headers = dict(response.items())
    assert headers.pop("X-Correlation-Id")
    answer = {
        "status": response.status_code,
        "headers": headers,
        "body": response.content.decode(),  # type: ignore[attr-defined]
        "metrics": {
            f"{name}{sorted(labels)}": value - before.get((name, labels), 0.0)
            for (name, labels), value in after.items()
            if value != before.get((name, labels), 0.0)
        },
        "logged": logged,
    }
    same: dict[str, Any] = json.loads(json.dumps(answer).replace("-lane-", "-WAY-").replace("-full-", "-WAY-"))
    return same


SCENARIOS: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    # name: (bodies posted first, the body compared)
    "admitted": ([], {}),
    "replayed": ([{}], {}),
    "another body, the same task_id": ([{}], {"max_tokens": 9}),
    "no pool serves the model": ([], {"model_ref": "nobody-serves-it"}),
    "a pinned pool that does not exist": ([], {"placement": {"mode": "pin", "pin_pool_id": "p-none"}}),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_lane_answers_as_the_chain_does(scenario: str, client_token: str, caplog: Any) -> None:
    earlier, change = SCENARIOS[scenario]
    answers = {}
    for way, send in (("lane", lane.AdmissionLane().respond), ("full", chain())):
        Task.objects.all().delete()  # each way meets an empty queue
        for body in earlier:
            chain()(request(client_token, task_body(task_id=f"t-{way}-1", **body)))
        answers[way] = seen(send, request(client_token, task_body(task_id=f"t-{way}-1", **change)), caplog)

    for part in answers["lane"]:
        assert answers["lane"][part] == answers["full"][part], part
    assert answers["lane"]["metrics"], "the request was counted"
    assert any(entry[1] == "http.request" for entry in answers["lane"]["logged"])


def test_an_unexpected_failure_is_the_internal_envelope_both_ways(
    client_token: str, caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("broken")

    monkeypatch.setattr(lane, "admit_task", broken)
    monkeypatch.setattr("orchestrator.tasks.api.views.admit_task", broken)

    ways: dict[str, Send] = {"lane": lane.AdmissionLane().respond, "full": chain()}
    answers = {
        way: seen(send, request(client_token, task_body(task_id=f"t-{way}-1")), caplog) for way, send in ways.items()
    }

    assert answers["lane"] == answers["full"]
    assert answers["lane"]["status"] == 500


@pytest.mark.parametrize(
    "case",
    [
        "no token",
        "an unknown token",
        "a node's token",
        "not JSON",
        "another media type",
        "a JSON array",
        "a field missing",
        "a host not allowed",
        "an indented answer asked for",
        "a query string",
        "a cookie",
        "no length (a chunked upload)",
    ],
)
def test_the_lane_stands_aside_having_changed_nothing(case: str, client_token: str) -> None:
    token: str | None = client_token
    body: Any = task_body(task_id="t-aside")
    extra: dict[str, Any] = {}
    if case == "no token":
        token = None
    elif case == "an unknown token":
        token = "orchd_not-a-real-token"
    elif case == "a node's token":
        token = issue_token("node-1", Role.NODE).value
    elif case == "not JSON":
        body = b"{not json"
    elif case == "another media type":
        extra["content_type"] = "text/plain"
    elif case == "a JSON array":
        body = [body]
    elif case == "a field missing":
        del body["model_ref"]
    elif case == "a host not allowed":
        extra["HTTP_HOST"] = "evil.example"
    elif case == "an indented answer asked for":
        extra["HTTP_ACCEPT"] = "application/json; indent=4"
    elif case == "a query string":
        extra["QUERY_STRING"] = "format=xml"
    elif case == "a cookie":
        extra["HTTP_COOKIE"] = "csrftoken=bad!"
    req = request(token, body, **extra)
    if case == "no length (a chunked upload)":
        del req.META["CONTENT_LENGTH"]
    before = http_metrics()

    assert lane.AdmissionLane().respond(req) is None

    assert http_metrics() == before
    assert not Task.objects.filter(id="t-aside").exists()


def test_an_https_redirect_is_left_to_the_chain(client_token: str, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True

    assert lane.AdmissionLane().respond(request(client_token, task_body(task_id="t-aside"))) is None


@pytest.mark.parametrize(
    "change",
    [
        {"MIDDLEWARE": lane.MIDDLEWARE[:-1]},
        {"REST_FRAMEWORK": {**lane.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": ["x.Throttle"]}},
        {"REST_FRAMEWORK": {**lane.REST_FRAMEWORK, "DEFAULT_RENDERER_CLASSES": ["x.Renderer"]}},
    ],
)
def test_the_lane_is_only_taken_with_the_settings_it_was_checked_against(settings: Any, change: dict[str, Any]) -> None:
    assert lane.applies()

    for name, value in change.items():
        setattr(settings, name, value)

    assert not lane.applies()


@pytest.mark.django_db(transaction=True)
async def test_the_web_server_admits_by_the_lane(client_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.asgi import Handler

    answered: list[int] = []
    respond = lane.AdmissionLane.respond

    def spied(self: lane.AdmissionLane, req: HttpRequest) -> HttpResponseBase | None:
        response = respond(self, req)
        answered.append(0 if response is None else response.status_code)
        return response

    monkeypatch.setattr(lane.AdmissionLane, "respond", spied)
    body = json.dumps(task_body(task_id="t-asgi")).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v2/tasks",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {client_token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    server = ApplicationCommunicator(Handler(one_thread=True), scope)
    await server.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await server.receive_output(timeout=10)
    await server.receive_output(timeout=10)
    await server.wait(timeout=10)  # the request's end: its connection closed

    assert start["status"] == 202
    assert answered == [202]


def test_after_the_lane_stands_aside_the_chain_reads_the_same_request(client_token: str) -> None:
    req = request(client_token, task_body(task_id="t-aside"), HTTP_ACCEPT="application/json; indent=4")

    assert lane.AdmissionLane().respond(req) is None
    response: Any = chain()(req)

    assert response.status_code == 202, response.content
    assert b'\n    "task_id": "t-aside"' in response.content
    assert Task.objects.filter(id="t-aside").exists()
