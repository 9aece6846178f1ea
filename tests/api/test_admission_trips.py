"""SQLite's admission trips: the admissions waiting for the DB thread answered together, one trip at a time."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connections, reset_queries
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.test import RequestFactory
from django.urls import get_script_prefix
from prometheus_client import REGISTRY

from orchestrator import asgi
from orchestrator.asgi import ADMISSIONS_PER_TRIP, AdmissionTrips, Handler
from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token
from orchestrator.tasks.models import Task
from tests.support.waiting import until
from tests.tasks.conftest import add_pool, task_body

# Closing a response on the DB thread checks its connection (`request_finished`).
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def request_started_as_served() -> Any:
    """`request_started` as the web server has it: orchestrator.asgi takes its sync receivers off.

    Django's test client and CaptureQueriesContext put `close_old_connections` and
    `reset_queries` back; a sync receiver there would make every request here one more
    trip to the DB thread (behind a trip a test holds).
    """
    taken = [receiver for receiver in (close_old_connections, reset_queries) if request_started.disconnect(receiver)]
    yield
    for receiver in taken:
        request_started.connect(receiver)


@pytest.fixture(autouse=True)
async def db_thread_connection_closed() -> AsyncIterator[None]:
    """The trips' DB thread (asgiref's one thread-sensitive thread) outlives the test: close its connection.

    Left open, it kept PostgreSQL's test database from being dropped at the end of the run.
    """
    yield
    await sync_to_async(connections.close_all, thread_sensitive=True)()


Pairs = list[tuple[HttpRequest, contextvars.Context]]


class Answers:
    """An `answer` for the trips: echoes each body; holds each trip until `release` is set."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.trips: list[list[bytes]] = []
        self.threads: set[int] = set()
        self.inside = 0
        self.release = threading.Event()
        self.release.set()
        self.fail_on = fail_on

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        self.threads.add(threading.get_ident())
        if request.body == self.fail_on:
            raise RuntimeError("this one fails")
        return HttpResponse(b"answer to " + request.body, status=202, content_type="application/json")

    def wrap(self, trips: AdmissionTrips) -> None:
        """Record each trip's requests; hold it while `release` is clear."""
        answer_all = trips._answer_all

        def recorded(pairs: Pairs) -> list[HttpResponseBase]:
            self.inside += 1
            self.trips.append([request.body for request, _ in pairs])
            self.release.wait(5)
            try:
                return answer_all(pairs)
            finally:
                self.inside -= 1

        trips._answer_all = recorded  # type: ignore[method-assign]


def handler_with(answers: Callable[[HttpRequest], HttpResponseBase], per_trip: int = ADMISSIONS_PER_TRIP) -> Handler:
    handler = Handler(one_thread=True)
    handler.admissions = AdmissionTrips(answers, per_trip=per_trip, handler_class=Handler)
    if isinstance(answers, Answers):
        answers.wrap(handler.admissions)
    return handler


def scope(path: str = "/v2/tasks", method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers or [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def post(app: Any, body: bytes, *, finish: bool = True) -> ApplicationCommunicator:
    """A client's request; with `finish=False`, its body is never completed."""
    server = ApplicationCommunicator(app, scope())
    await server.send_input({"type": "http.request", "body": body, "more_body": not finish})
    return server


async def answer_of(server: ApplicationCommunicator) -> tuple[int, bytes]:
    start = await server.receive_output(timeout=10)
    body = await server.receive_output(timeout=10)
    await server.wait(timeout=10)
    return start["status"], body["body"]


def receive_of(body: bytes) -> Callable[[], Any]:
    """A client's `receive` for a whole body in one message."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


def waiting(handler: Handler) -> int:
    """How many requests wait for the next trip (on this loop)."""
    assert handler.admissions is not None
    return len(handler.admissions._waiting.get(asyncio.get_running_loop(), []))


async def held_first_trip(answers: Answers, handler: Handler) -> ApplicationCommunicator:
    """A first request whose trip is out (and held): what comes next waits for the next trip."""
    answers.release.clear()
    first = await post(handler, b"first")
    await until(lambda: answers.inside == 1)
    return first


async def test_admissions_waiting_for_a_trip_go_together_one_trip_at_a_time() -> None:
    answers = Answers()
    handler = handler_with(answers, per_trip=3)
    first = await held_first_trip(answers, handler)
    servers = [await post(handler, str(i).encode()) for i in range(1, 6)]
    await until(lambda: waiting(handler) == 5)  # they arrive while the first trip is out

    answers.release.set()
    answered = [await answer_of(server) for server in (first, *servers)]

    assert answers.trips == [[b"first"], [b"1", b"2", b"3"], [b"4", b"5"]], "in order, at most 3 a trip"
    assert answered[0] == (202, b"answer to first")
    assert answered[1:] == [(202, b"answer to " + str(i).encode()) for i in range(1, 6)], "each its own answer"
    assert handler.admissions is not None
    assert handler.admissions.trips_made == 3


async def test_a_client_sending_its_body_slowly_holds_no_place() -> None:
    answers = Answers()
    handler = handler_with(answers)
    slow = [await post(handler, b"{", finish=False) for _ in range(3)]

    fast = await post(handler, b"{}")

    assert await answer_of(fast) == (202, b"answer to {}")
    assert answers.trips == [[b"{}"]], "the slow requests joined no trip: their bodies are not in"
    for server in slow:
        await server.send_input({"type": "http.request", "body": b"}", "more_body": False})
        assert await answer_of(server) == (202, b"answer to {}")


async def test_a_failing_answer_is_an_envelope_and_the_others_are_answered() -> None:
    answers = Answers(fail_on=b"bad")
    handler = handler_with(answers)
    first = await held_first_trip(answers, handler)
    servers = [await post(handler, body) for body in (b"b", b"bad", b"c")]
    await until(lambda: waiting(handler) == 3)
    answers.release.set()

    answered = [await answer_of(server) for server in (first, *servers)]

    assert answers.trips == [[b"first"], [b"b", b"bad", b"c"]]
    assert [status for status, _ in answered] == [202, 202, 500, 202]
    assert json.loads(answered[2][1])["code"] == "INTERNAL", "the API's envelope, not a page"
    assert answered[3] == (202, b"answer to c")


async def test_a_failing_error_handler_still_answers_with_an_envelope(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(request: HttpRequest, exc: Exception) -> HttpResponseBase:
        raise RuntimeError("the error handler fails too")

    monkeypatch.setattr(asgi, "response_for_exception", broken)
    handler = handler_with(Answers(fail_on=b"bad"))

    status, body = await answer_of(await post(handler, b"bad"))

    assert status == 500
    assert json.loads(body)["code"] == "INTERNAL"


async def test_a_failed_trip_answers_each_of_its_requests_with_its_own_envelope() -> None:
    answers = Answers()
    handler = handler_with(answers)
    assert handler.admissions is not None
    first = await held_first_trip(answers, handler)
    servers = [await post(handler, body) for body in (b"a", b"b", b"c")]
    await until(lambda: waiting(handler) == 3)

    def broken(pairs: Pairs) -> list[HttpResponseBase]:
        raise RuntimeError("the trip itself broke")

    handler.admissions._answer_all = broken  # type: ignore[method-assign]  # the next trip breaks
    answers.release.set()
    answered = [await answer_of(server) for server in servers]

    assert await answer_of(first) == (202, b"answer to first")
    assert [status for status, _ in answered] == [500, 500, 500]
    assert {json.loads(body)["code"] for _, body in answered} == {"INTERNAL"}


async def test_each_response_is_closed_once_in_its_trip_before_it_is_sent() -> None:
    answers = Answers()
    handler = handler_with(answers)
    events: list[tuple[str, Any]] = []

    def finished(sender: Any, **kwargs: Any) -> None:
        events.append(("finished", (sender, threading.get_ident())))

    async def send(message: dict[str, Any]) -> None:
        events.append(("sent", message["type"]))

    request_finished.connect(finished)
    try:
        for body in (b"1", b"2"):
            await handler(scope(), receive_of(body), send)
    finally:
        request_finished.disconnect(finished)

    thread = next(iter(answers.threads))
    one = [("finished", (Handler, thread)), ("sent", "http.response.start"), ("sent", "http.response.body")]
    assert events == one + one, "closed once, by its trip (on the DB thread, sender as Django's), then sent"
    assert thread != threading.get_ident()


async def test_a_failing_close_leaves_the_answers_standing(caplog: pytest.LogCaptureFixture) -> None:
    answers = Answers()
    handler = handler_with(answers)
    closes: list[int] = []

    def fails_on_the_second(**kwargs: Any) -> None:
        closes.append(1)
        if len(closes) == 3:  # the first trip's, then the second of the next trip
            raise RuntimeError("a receiver of request_finished fails")

    first = await held_first_trip(answers, handler)
    servers = [await post(handler, body) for body in (b"a", b"b", b"c")]
    await until(lambda: waiting(handler) == 3)
    request_finished.connect(fails_on_the_second)
    try:
        with caplog.at_level(logging.ERROR, logger="orchestrator.asgi"):
            answers.release.set()
            answered = [await answer_of(server) for server in (first, *servers)]
    finally:
        request_finished.disconnect(fails_on_the_second)

    assert answered == [(202, b"answer to " + body) for body in (b"first", b"a", b"b", b"c")], "admitted is admitted"
    assert [record.msg for record in caplog.records if record.name == "orchestrator.asgi"] == ["admission.close_failed"]


async def test_a_request_whose_handler_is_cancelled_while_it_waits_is_dropped() -> None:
    answers = Answers()
    handler = handler_with(answers)
    first = await held_first_trip(answers, handler)
    gone = await post(handler, b"gone")
    stays = await post(handler, b"stays")
    await until(lambda: waiting(handler) == 2)

    gone.future.cancel()  # the server gives up on it (shutdown, or its timeout)
    await until(gone.future.done)
    answers.release.set()

    assert await answer_of(first) == (202, b"answer to first")
    assert await answer_of(stays) == (202, b"answer to stays")
    assert answers.trips == [[b"first"], [b"stays"]], "the cancelled request went to no trip"


async def test_trips_start_again_after_their_task_was_cancelled_before_it_ran() -> None:
    trips = AdmissionTrips(Answers())
    loop = asyncio.get_running_loop()
    lost = RequestFactory().post("/v2/tasks", b"lost", content_type="application/json")

    waiting = asyncio.create_task(trips.response(lost))
    await asyncio.sleep(0)  # it joins, and starts a task making trips
    trips._trips[loop].cancel()  # cancelled before its first step (the loop shutting down)
    with pytest.raises(asyncio.CancelledError):
        await waiting

    later = RequestFactory().post("/v2/tasks", b"later", content_type="application/json")
    response = await asyncio.wait_for(trips.response(later), 10)

    assert isinstance(response, HttpResponse)
    assert response.content == b"answer to later", "a later admission is answered: nothing stuck"
    assert loop not in trips._trips
    assert loop not in trips._waiting, "nothing kept for the loop once its trips are done"


async def test_each_request_is_answered_in_its_own_context() -> None:
    seen: dict[bytes, str] = {}
    current: contextvars.ContextVar[str] = contextvars.ContextVar("current")
    answers = Answers()

    def answer(request: HttpRequest) -> HttpResponseBase:
        seen[request.body] = current.get("none")
        return answers(request)

    handler = handler_with(answer)
    answers.wrap(handler.admissions)  # type: ignore[arg-type]

    async def app(scope: Any, receive: Any, send: Any) -> None:  # as an outer ASGI middleware would
        current.set(f"context of {scope['headers'][-1][1].decode()}")
        await handler(scope, receive, send)

    answers.release.clear()
    servers = []
    for name in ("a", "b", "c"):
        server = ApplicationCommunicator(app, {**scope(), "headers": [*scope()["headers"], (b"x-name", name.encode())]})
        await server.send_input({"type": "http.request", "body": name.encode(), "more_body": False})
        servers.append(server)
        if name == "a":
            await until(lambda: answers.inside == 1)
    await until(lambda: waiting(handler) == 2)
    answers.release.set()
    for server in servers:
        await answer_of(server)

    assert answers.trips == [[b"a"], [b"b", b"c"]]
    assert seen == {b"a": "context of a", b"b": "context of b", b"c": "context of c"}


async def test_an_answer_sees_the_script_prefix_and_its_request_is_closed_with_it() -> None:
    prefixes: list[str] = []
    requests: list[HttpRequest] = []
    answers = Answers(fail_on=b"bad")

    def answer(request: HttpRequest) -> HttpResponseBase:
        prefixes.append(get_script_prefix())
        requests.append(request)
        return answers(request)

    handler = handler_with(answer)
    for body in (b"good", b"bad"):
        server = ApplicationCommunicator(handler, {**scope(), "root_path": "/api"})
        await server.send_input({"type": "http.request", "body": body, "more_body": False})
        await answer_of(server)

    assert prefixes == ["/api/", "/api/"], "as Django's handler sets it for the view"
    assert [request._stream.closed for request in requests] == [True, True], "answered or failed, its body is closed"


async def test_a_request_django_cannot_build_is_refused_without_a_trip() -> None:
    answers = Answers()
    handler = handler_with(answers)
    server = ApplicationCommunicator(handler, {**scope(), "query_string": b"x=\xff"})  # not UTF-8
    await server.send_input({"type": "http.request", "body": b"{}", "more_body": False})

    status, _ = await answer_of(server)

    assert status == 400, "as Django's handler refuses it"
    assert answers.trips == []


async def test_other_requests_take_django_s_way() -> None:
    answers = Answers()
    handler = handler_with(answers)
    server = ApplicationCommunicator(handler, scope(path="/healthz", method="GET"))
    await server.send_input({"type": "http.request", "body": b"", "more_body": False})

    status, _ = await answer_of(server)

    assert status == 200
    assert answers.trips == []


@pytest.fixture
def client_token() -> str:
    add_pool("p1", "http://127.0.0.1:9", slots=2, ctx_max=4096)
    return issue_token("bob", Role.CLIENT).value


def trip_sizes() -> tuple[float, float]:
    return (
        REGISTRY.get_sample_value("orchd_admission_trip_size_count") or 0.0,
        REGISTRY.get_sample_value("orchd_admission_trip_size_sum") or 0.0,
    )


async def test_concurrent_admissions_through_the_web_handler_are_all_persisted_in_fewer_trips(
    client_token: str,
) -> None:
    handler = Handler(one_thread=True)
    assert handler.admissions is not None
    trips_before, admissions_before = trip_sizes()

    async def admit(index: int) -> tuple[int, bytes]:
        body = json.dumps(task_body(task_id=f"t-trip-{index}")).encode()
        headers = [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {client_token}".encode()),
        ]
        server = ApplicationCommunicator(handler, scope(headers=headers))
        await server.send_input({"type": "http.request", "body": body, "more_body": False})
        return await answer_of(server)

    answered = await asyncio.gather(*(admit(i) for i in range(12)))

    assert [status for status, _ in answered] == [202] * 12
    assert sorted(json.loads(body)["task_id"] for _, body in answered) == sorted(f"t-trip-{i}" for i in range(12))
    ids = {task_id async for task_id in Task.objects.filter(id__startswith="t-trip-").values_list("id", flat=True)}
    assert len(ids) == 12, "every admission answered 202 is persisted"
    assert handler.admissions.trips_made < 12, "admissions that waited together went in one trip"
    trips_after, admissions_after = trip_sizes()
    assert (trips_after - trips_before, admissions_after - admissions_before) == (handler.admissions.trips_made, 12)
