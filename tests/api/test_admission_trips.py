"""SQLite's admission trips: the admissions waiting for the DB thread answered together, one trip at a time."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from orchestrator.asgi import ADMISSIONS_PER_TRIP, AdmissionTrips, Handler
from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token
from orchestrator.tasks.models import Task
from tests.tasks.conftest import add_pool, task_body

# Closing a response on the DB thread checks its connection (`request_finished`).
pytestmark = pytest.mark.django_db(transaction=True)


class Answers:
    """An `answer` for the trips: echoes each body; holds each trip until `release` is set."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.trips: list[list[bytes]] = []
        self.threads: set[int] = set()
        self.inside = 0
        self.most_inside = 0
        self.release = threading.Event()
        self.release.set()
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        self.threads.add(threading.get_ident())
        if request.body == self.fail_on:
            raise RuntimeError("this one fails")
        return HttpResponse(b"answer to " + request.body, status=202, content_type="application/json")

    def wrap(self, trips: AdmissionTrips) -> None:
        """Record each trip's requests, and how many trips are out at once."""
        answer_all = trips._answer_all

        def recorded(requests: list[HttpRequest]) -> list[HttpResponseBase]:
            with self._lock:
                self.inside += 1
                self.most_inside = max(self.most_inside, self.inside)
            self.trips.append([r.body for r in requests])
            self.release.wait(5)
            try:
                return answer_all(requests)
            finally:
                with self._lock:
                    self.inside -= 1

        trips._answer_all = recorded  # type: ignore[method-assign]


def handler_with(answers: Answers, per_trip: int = ADMISSIONS_PER_TRIP) -> Handler:
    handler = Handler(one_thread=True)
    handler.admissions = AdmissionTrips(answers, per_trip=per_trip)
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


async def post(handler: Handler, body: bytes, *, finish: bool = True) -> ApplicationCommunicator:
    """A client's request; with `finish=False`, its body is never completed."""
    server = ApplicationCommunicator(handler, scope())
    await server.send_input({"type": "http.request", "body": body, "more_body": not finish})
    return server


async def answer_of(server: ApplicationCommunicator) -> tuple[int, bytes]:
    start = await server.receive_output(timeout=10)
    body = await server.receive_output(timeout=10)
    await server.wait(timeout=10)
    return start["status"], body["body"]


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def test_admissions_waiting_for_a_trip_go_together_one_trip_at_a_time() -> None:
    answers = Answers()
    answers.release.clear()
    handler = handler_with(answers, per_trip=3)
    first = await post(handler, b"0")
    await until(lambda: answers.inside == 1)
    waiting = [await post(handler, str(i).encode()) for i in range(1, 6)]
    await asyncio.sleep(0.05)  # they arrive while the first trip is out

    answers.release.set()
    answered = [await answer_of(server) for server in (first, *waiting)]

    assert answers.trips == [[b"0"], [b"1", b"2", b"3"], [b"4", b"5"]], "in order, at most 3 a trip"
    assert answers.most_inside == 1, "one trip at a time"
    assert answered == [(202, b"answer to " + str(i).encode()) for i in range(6)], "each its own answer"
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
    answers.release.clear()
    handler = handler_with(answers)
    first = await post(handler, b"a")
    await until(lambda: answers.inside == 1)
    servers = [await post(handler, body) for body in (b"b", b"bad", b"c")]
    await asyncio.sleep(0.05)
    answers.release.set()

    answered = [await answer_of(server) for server in (first, *servers)]

    assert answers.trips == [[b"a"], [b"b", b"bad", b"c"]]
    assert [status for status, _ in answered] == [202, 202, 500, 202]
    assert json.loads(answered[2][1])["code"] == "INTERNAL", "the API's envelope, not a page"
    assert answered[3] == (202, b"answer to c")


async def test_a_failed_trip_still_answers_every_request_with_an_envelope() -> None:
    handler = Handler(one_thread=True)
    handler.admissions = AdmissionTrips(lambda request: HttpResponse())

    def broken(requests: list[HttpRequest]) -> list[HttpResponseBase]:
        raise RuntimeError("the trip itself broke")

    handler.admissions._answer_all = broken  # type: ignore[method-assign]

    status, body = await answer_of(await post(handler, b"{}"))

    assert status == 500
    assert json.loads(body)["code"] == "INTERNAL"


async def test_each_response_is_closed_once_on_the_thread_that_answered_it() -> None:
    answers = Answers()
    handler = handler_with(answers)
    finished: list[int] = []

    def record(**kwargs: Any) -> None:
        finished.append(threading.get_ident())

    request_finished.connect(record)
    try:
        for body in (b"1", b"2"):
            assert await answer_of(await post(handler, body)) == (202, b"answer to " + body)
    finally:
        request_finished.disconnect(record)

    assert len(finished) == 2, "request_finished once per request: no second close after the answer is sent"
    assert set(finished) == answers.threads, "on the thread that answered"
    assert threading.get_ident() not in finished, "not on the event loop's"


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


async def test_concurrent_admissions_through_the_web_handler_are_all_persisted_in_fewer_trips(
    client_token: str,
) -> None:
    token = client_token
    handler = Handler(one_thread=True)
    assert handler.admissions is not None

    async def admit(index: int) -> tuple[int, bytes]:
        body = json.dumps(task_body(task_id=f"t-trip-{index}")).encode()
        headers = [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {token}".encode()),
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
