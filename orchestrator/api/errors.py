"""The SPEC's error envelope, and the one place every API error is shaped.

`ApiError` is raised by services and views; `exception_handler` (DRF) and the
JSON fallbacks for Django's 400/403/404/500 handlers turn every failure under
the API prefixes into `{"code", "message", ...}` with the right status and,
for retriable errors, `Retry-After` and `X-Backoff-Ms`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

logger = logging.getLogger("orchestrator.api")

API_PREFIXES = ("/v2/", "/v1/", "/metrics", "/healthz", "/readyz")


@dataclass
class ApiError(Exception):
    """An error a client can act on; rendered as the SPEC's envelope."""

    status: int
    code: str
    message: str
    retry_after_ms: int | None = None
    policy_label: str | None = None
    engine: str | None = None
    pool_id: str | None = None
    details: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def retriable(self) -> bool:
        return self.retry_after_ms is not None

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retry_after_ms is not None:
            body["retriable"] = True
            body["retry_after_ms"] = self.retry_after_ms
        else:
            body["retriable"] = False
        optional = {
            "policy_label": self.policy_label,
            "engine": self.engine,
            "pool_id": self.pool_id,
            "details": self.details,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after_ms is not None:
            headers.update(backoff_headers(self.retry_after_ms))
        return headers


def backoff_headers(retry_after_ms: int) -> dict[str, str]:
    """`Retry-After` in whole seconds (at least 1, rounded up) plus the exact ms."""
    seconds = max(1, math.ceil(retry_after_ms / 1000))
    return {"Retry-After": str(seconds), "X-Backoff-Ms": str(retry_after_ms)}


def invalid_params(message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(400, "INVALID_PARAMS", message, details=details)


def not_found(what: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} was not found.")


def conflict(message: str) -> ApiError:
    return ApiError(409, "CONFLICT", message)


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIXES) or path in ("/v2", "/v1")


def error_response(error: ApiError) -> JsonResponse:
    return JsonResponse(error.envelope(), status=error.status, headers=error.response_headers())


def _validation_details(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {str(key): _plain(value) for key, value in detail.items()}
    return {"non_field_errors": _plain(detail)}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return str(value)


def _describe_fields(details: dict[str, Any]) -> str:
    names = [name for name in details if name != "non_field_errors"]
    if not names:
        return "The request body is invalid."
    return "Invalid or missing field(s): " + ", ".join(sorted(names)) + "."


def api_error_from(exc: Exception) -> ApiError | None:
    """Map a DRF/Django exception onto the envelope; None for unexpected ones."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, drf.ValidationError):
        details = _validation_details(exc.detail)
        return invalid_params(_describe_fields(details), details)
    if isinstance(exc, drf.ParseError):
        return invalid_params(f"The request body is not valid JSON: {exc.detail}")
    if isinstance(exc, drf.UnsupportedMediaType):
        return ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json.")
    if isinstance(exc, drf.NotAuthenticated):
        return ApiError(401, "MISSING_TOKEN", "This endpoint needs an 'Authorization: Bearer <token>' header.")
    if isinstance(exc, drf.AuthenticationFailed):
        return ApiError(401, "BAD_TOKEN", str(exc.detail))
    if isinstance(exc, drf.PermissionDenied | DjangoPermissionDenied):
        message = str(exc.detail) if isinstance(exc, drf.PermissionDenied) else "Permission denied."
        return ApiError(403, "FORBIDDEN", message)
    if isinstance(exc, drf.NotFound | Http404):
        return ApiError(404, "NOT_FOUND", "The requested resource was not found.")
    if isinstance(exc, drf.MethodNotAllowed):
        return ApiError(405, "METHOD_NOT_ALLOWED", str(exc.detail))
    if isinstance(exc, drf.NotAcceptable):
        return ApiError(406, "NOT_ACCEPTABLE", "This endpoint answers with application/json only.")
    if isinstance(exc, drf.APIException):
        return ApiError(exc.status_code, "INVALID_PARAMS" if exc.status_code == 400 else "ERROR", str(exc.detail))
    return None


def internal_error() -> ApiError:
    return ApiError(500, "INTERNAL", "An internal error occurred; it was logged with this request's correlation id.")


def answer_for(exc: Exception) -> ApiError:
    """The envelope a view answers a failure with; an unexpected one is logged, and INTERNAL."""
    error = api_error_from(exc)
    if error is None:
        logger.error("request.unhandled_exception", exc_info=exc)
        error = internal_error()
    return error


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: every failure in an API view becomes an envelope."""
    error = answer_for(exc)
    response = Response(error.envelope(), status=error.status, headers=error.response_headers())
    # DRF's own auth header negotiation, so 401s advertise the scheme.
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="orchestratord"'
    return response


# --- Django-level handlers (URLconf handler400/403/404/500) -------------------


def _django_default(name: str) -> Any:
    from django.views import defaults

    return getattr(defaults, name)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return error_response(invalid_params("The request could not be understood."))
    return _django_default("bad_request")(request, exception)  # type: ignore[no-any-return]


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return error_response(ApiError(403, "FORBIDDEN", "Permission denied."))
    return _django_default("permission_denied")(request, exception)  # type: ignore[no-any-return]


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return error_response(ApiError(404, "NOT_FOUND", f"No API endpoint or resource at {request.path}."))
    return _django_default("page_not_found")(request, exception)  # type: ignore[no-any-return]


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_path(request.path):
        return error_response(internal_error())
    return _django_default("server_error")(request)  # type: ignore[no-any-return]
