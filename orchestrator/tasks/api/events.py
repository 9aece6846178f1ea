"""GET /v2/tasks/{id}/events: the task's frames as Server-Sent Events (SPEC §3.4).

A Django async view returning a StreamingHttpResponse over an async
generator: Django's ASGI handler cancels the generator as soon as the client
disconnects, which is what abandonment detection relies on. The frame loop
only reads the event log — no ORM call — so any number of clients on any
process can watch, attach late or resume with Last-Event-ID. Besides bearer
tokens, a logged-in staff session may watch (the console's live view).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from rest_framework.exceptions import APIException

from orchestrator.api.errors import ApiError, api_error_from, error_response, internal_error, not_found
from orchestrator.auth.authentication import authenticate_request
from orchestrator.auth.services import Principal
from orchestrator.budgets.ledger import remaining_for
from orchestrator.events import get_event_log
from orchestrator.events.base import Frame
from orchestrator.events.sse import KEEPALIVE, format_frame
from orchestrator.ids import is_valid_id
from orchestrator.sql import Select
from orchestrator.tasks.lifecycle import LIVE_STATES
from orchestrator.tasks.models import Task
from orchestrator.tasks.replay import stored_frames


async def task_events(request: HttpRequest, task_id: str) -> HttpResponseBase:
    denied = await _authorize(request)
    if denied is not None:
        return denied
    # One trip to the DB thread for both reads: each trip waits behind the other requests' work.
    found = await sync_to_async(_task_and_budgets)(task_id) if is_valid_id(task_id) else None
    if found is None:
        return error_response(not_found(f"Task '{task_id}'"))
    task, budget_headers = found
    after = _last_event_id(request)
    verbose = request.GET.get("verbose", "").lower() in ("1", "true", "yes")
    log = get_event_log()
    if task.state in LIVE_STATES or await log.exists(task_id):
        frames = _tail(task_id, after, verbose)
    else:
        frames = _replay(await sync_to_async(_stored_frames)(task), after)
    response = StreamingHttpResponse(frames, content_type="text/event-stream")
    for name, value in budget_headers.items():
        response[name] = value
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def _authorize(request: HttpRequest) -> HttpResponseBase | None:
    try:
        principal = await sync_to_async(authenticate_request)(request)
    except APIException as exc:
        return error_response(api_error_from(exc) or internal_error())
    if principal is None:
        if await _is_staff_watcher(request):
            return None
        return error_response(
            ApiError(401, "MISSING_TOKEN", "This endpoint needs an 'Authorization: Bearer <token>' header.")
        )
    if not isinstance(principal, Principal) or not principal.has_role("client"):
        return error_response(
            ApiError(403, "FORBIDDEN", "This endpoint needs a token with the client or operator role.")
        )
    return None


async def _is_staff_watcher(request: HttpRequest) -> bool:
    """A logged-in console user who may view tasks: the admin's live view tails streams this way.

    Read-only (this is a GET, so CSRF does not apply), and only when no
    bearer header was sent: a request with a token is judged by the token alone.
    """
    auser = getattr(request, "auser", None)
    if auser is None:
        return False
    user = await auser()
    return bool(user.is_active and user.is_staff and await user.ahas_perm("tasks.view_task"))


def _task_and_budgets(task_id: str) -> tuple[Task, dict[str, str]] | None:
    """The task and its budget headers, in one trip to a thread; a live stream's last use of the database."""
    try:
        task = _ATTACHING.first(task_id)
        if task is None:
            return None
        return task, remaining_for(task.session_id, task.token_id).headers()
    finally:
        _release_connection()


def _stored_frames(task: Task) -> list[Frame]:
    try:
        return stored_frames(task)
    finally:
        _release_connection()


def _release_connection() -> None:
    """Let the stream go on without a database connection.

    On PostgreSQL each request runs in a thread of its own whose connection
    Django closes when the response ends: for an SSE stream, when the stream
    does, so every open stream held an idle connection. It is closed now (or
    handed back to the pool), whatever ORCHD_DB_CONN_MAX_AGE says: a
    request's thread does not outlive it, so there is nothing to keep it for.
    SQLite's one connection, shared by the process's one DB thread, follows
    its age limit (none by default). Inside a transaction (tests) nothing is closed.
    """
    if connection.in_atomic_block:
        return
    if connection.vendor == "sqlite":
        connection.close_if_unusable_or_obsolete()
    else:
        connection.close()


# Every attach reads this: SQL written once (orchestrator.sql).
_ATTACHING = Select(Task, ("id", "state", "transcript_artifact_id", "session_id", "token_id"), '"id" = %s')


def _last_event_id(request: HttpRequest) -> int:
    raw = request.headers.get("Last-Event-ID", "").strip()
    # ASCII digits only, and short: int() accepts other Unicode digits and huge numbers.
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else -1


async def _tail(task_id: str, after: int, verbose: bool) -> AsyncIterator[bytes]:
    log = get_event_log()
    await log.attach(task_id)
    try:
        while True:
            frames = await log.read(task_id, after, float(settings.ORCHD_SSE_KEEPALIVE_S))
            if not frames:
                # Nothing new: either 15 s passed (keep-alive), or the stream already
                # ended before `after` (a resume past the terminal frame).
                if (await log.stats(task_id)).terminated:
                    return
                yield KEEPALIVE
                continue
            chunk = []
            for frame in frames:
                chunk.append(format_frame(_shaped(frame, verbose)))
                after = frame.seq
                if frame.terminal:
                    yield b"".join(chunk)
                    return
            yield b"".join(chunk)
    finally:
        await log.detach(task_id, int(time.time() * 1000))


async def _replay(frames: list[Frame], after: int) -> AsyncIterator[bytes]:
    for frame in frames:
        if frame.seq > after:
            yield format_frame(frame)


def _shaped(frame: Frame, verbose: bool) -> Frame:
    """`human` appears in metrics frames only for verbose clients."""
    if frame.event != "metrics":
        return frame
    data = {key: value for key, value in frame.data.items() if key != "human"}
    if verbose:
        data["human"] = _human(data)
    return Frame(frame.seq, frame.event, data)


def _human(data: dict[str, Any]) -> str:
    parts = []
    if "queue_depth" in data:
        parts.append(f"{data['queue_depth']} task(s) ahead in the queue")
    if "on_time_probability" in data:
        parts.append(f"{round(100 * data['on_time_probability'])}% likely to start before the deadline")
    if "tokens_per_s" in data:
        parts.append(f"{data['tokens_per_s']} tokens/s")
    return "; ".join(parts) or "working"
