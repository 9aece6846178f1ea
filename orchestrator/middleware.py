"""Request-scoped middleware: correlation ids and the API's last-resort 500."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from orchestrator import logs
from orchestrator.api.errors import error_response, internal_error, is_api_path

logger = logging.getLogger("orchestrator.http")

HEADER = "X-Correlation-Id"
# 1–128 visible ASCII characters (SPEC §1); anything else gets a fresh UUIDv4.
_VALID_ID = re.compile(r"^[\x21-\x7e]{1,128}$")

Handler = Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]


def correlation_id_for(request: HttpRequest) -> str:
    offered = request.headers.get(HEADER, "")
    if _VALID_ID.fullmatch(offered):
        return offered
    return str(uuid.uuid4())


class HybridMiddleware:
    """Middleware that runs in sync and async stacks alike, without a thread hop.

    Streaming (async) views must stay on the event loop, so the chain keeps
    the kind of its inner handler; subclasses implement `before` and `after`.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self.__acall__(request)
        state = self.before(request)
        response = self.get_response(request)
        assert isinstance(response, HttpResponseBase)  # noqa: S101 - a sync chain returns responses
        return self.after(request, response, state)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        state = self.before(request)
        response = await self.get_response(request)  # type: ignore[misc]
        return self.after(request, response, state)

    def before(self, request: HttpRequest) -> Any:
        return None

    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> HttpResponseBase:
        return response


class CorrelationIdMiddleware(HybridMiddleware):
    """Binds the correlation id to the log context and echoes it on the response.

    The header is set before the first byte, so streams carry it too.
    """

    def before(self, request: HttpRequest) -> tuple[str, float]:
        cid = correlation_id_for(request)
        request.correlation_id = cid  # type: ignore[attr-defined]
        logs.start_request(cid)
        return cid, time.perf_counter()

    def after(self, request: HttpRequest, response: HttpResponseBase, state: Any) -> HttpResponseBase:
        cid, started = state
        response[HEADER] = cid
        if is_api_path(request.path):
            logger.info(
                "http.request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "principal": getattr(request, "principal_label", None),
                },
            )
        return response


class ApiExceptionMiddleware(HybridMiddleware):
    """Turns an exception escaping a non-DRF API view into the INTERNAL envelope.

    DRF views already answer through `exception_handler`; this catches the
    rest (plain Django views such as the SSE stream or health checks), so no
    API path ever answers with Django's HTML error page.
    """

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from django.core.exceptions import PermissionDenied, SuspiciousOperation
        from django.http import Http404

        if not is_api_path(request.path) or isinstance(exception, Http404 | PermissionDenied | SuspiciousOperation):
            return None
        logger.error("request.unhandled_exception", exc_info=exception)
        return error_response(internal_error())
