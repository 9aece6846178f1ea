"""Structured JSON logs: one object per line, with the request's context.

Context (the correlation id, and task/session/pool ids where known) lives in
a contextvar, so every line written while serving a request carries it —
including lines from libraries — without threading it through call chains.
Contextvars follow asyncio tasks and `sync_to_async` threads.
"""

from __future__ import annotations

import contextvars
import json
import logging
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType

# The default is an immutable empty mapping; bind() always builds a new dict.
_EMPTY: Mapping[str, object] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar("orchd_log_context", default=_EMPTY)

# Attributes every LogRecord has; anything else came from `extra=` and is ours.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def current_context() -> Mapping[str, object]:
    return _context.get()


def correlation_id() -> str | None:
    value = _context.get().get("correlation_id")
    return str(value) if value is not None else None


def start_request(correlation_id: str) -> None:
    """Begin a fresh context for a request.

    Not reset at the end on purpose: Django logs a failed request after the
    middleware has returned, and that line must carry the id too. Nothing
    leaks: under ASGI every request runs in its own context, and the next
    request in a WSGI thread replaces the whole context here.
    """
    _context.set({"correlation_id": correlation_id})


def bind(**fields: object) -> contextvars.Token[Mapping[str, object]]:
    """Add fields to the log context of the current task/thread."""
    return _context.set({**_context.get(), **fields})


def reset(token: contextvars.Token[Mapping[str, object]]) -> None:
    _context.reset(token)


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record (explicit `extra` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "event", "logger", "correlation_id", ...extra}` per line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
            "correlation_id": getattr(record, "correlation_id", None),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in payload:
                payload[key] = value
        if record.exc_info:
            payload["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            payload["stack"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(payload, default=str, separators=(",", ":"))
