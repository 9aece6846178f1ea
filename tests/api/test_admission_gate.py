"""The SQLite admission gate: two admissions at a time, and slow bodies never hold a place."""

from __future__ import annotations

import asyncio
from typing import Any

from orchestrator.asgi import ADMISSIONS_AT_ONCE, AdmissionGate

POST = {"type": "http", "method": "POST", "path": "/v2/tasks"}


class App:
    """Records what reached it; each request stays in until `release` is set."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.bodies: list[bytes] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        self.bodies.append(body)
        await self.release.wait()
        self.inside -= 1


def body_of(*chunks: bytes, finished: asyncio.Event | None = None) -> Any:
    """A client's `receive`: the chunks, then (if given) a wait for `finished` before the last one."""
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        if finished is not None:
            await finished.wait()
        return {"type": "http.request", "body": b"!", "more_body": False}

    return receive


async def nothing(message: dict[str, Any]) -> None:
    return None


async def test_at_most_two_admissions_are_inside_at_once():
    app = App()
    gate = AdmissionGate(app, body_limit=1000)

    requests = [asyncio.create_task(gate(POST, body_of(b"{}"), nothing)) for _ in range(5)]
    await asyncio.sleep(0.05)

    assert app.inside == ADMISSIONS_AT_ONCE
    app.release.set()
    await asyncio.gather(*requests)
    assert app.most_inside == ADMISSIONS_AT_ONCE
    assert app.bodies == [b"{}!"] * 5, "every body reaches the app whole"


async def test_clients_sending_their_bodies_slowly_do_not_hold_the_gate():
    app = App()
    gate = AdmissionGate(app, body_limit=1000)
    never = asyncio.Event()
    slow = [asyncio.create_task(gate(POST, body_of(b"{", finished=never), nothing)) for _ in range(3)]

    fast = asyncio.create_task(gate(POST, body_of(b"{}"), nothing))
    await asyncio.sleep(0.05)

    assert app.inside == 1, "the complete request went in; the slow ones wait for their bodies, outside"
    app.release.set()
    await fast
    for request in slow:
        request.cancel()


async def test_a_body_over_the_limit_is_left_to_the_app():
    app = App()
    app.release.set()
    gate = AdmissionGate(app, body_limit=4)

    await gate(POST, body_of(b"12345", b"67890"), nothing)

    assert app.bodies == [b"1234567890!"], "what the gate did not hold, the app reads itself"


async def test_other_requests_pass_straight_through():
    app = App()
    app.release.set()
    gate = AdmissionGate(app, body_limit=1000)

    await gate({"type": "http", "method": "GET", "path": "/v2/tasks"}, body_of(), nothing)

    assert app.bodies == [b"!"]


async def test_a_body_over_the_limit_never_holds_a_place():
    app = App()
    gate = AdmissionGate(app, body_limit=4)
    never = asyncio.Event()
    huge = [asyncio.create_task(gate(POST, body_of(b"12345", finished=never), nothing)) for _ in range(3)]
    await asyncio.sleep(0.05)

    fast = asyncio.create_task(gate(POST, body_of(b"{}"), nothing))
    await asyncio.sleep(0.05)

    assert app.inside == 4, "three oversized requests (reading the rest themselves) and the fast one"
    app.release.set()
    await fast
    for request in huge:
        request.cancel()
