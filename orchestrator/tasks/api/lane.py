"""`POST /v2/tasks` in its common case, without Django's middleware chain and DRF's view.

A task's first token waits for its admission, and around the admission
itself the middleware chain, URL resolution and DRF's request, parsing,
authentication and rendering took about 1 ms of wall time per task here,
more than their CPU time suggests: a long, cold path between two idle
moments (docs/performance.md, step 10).

The lane answers as the full chain would, with the same status, body,
headers, metrics, log lines and correlation id. It calls the chain's own
pieces in the chain's order: the middleware that does something for this
request (correlation id, django-prometheus, security headers,
CommonMiddleware, X-Frame-Options), the project's token authentication and
JSON parsing, the view's admission, DRF's JSON renderer and the API's
error envelopes. The middleware it leaves out does nothing for this request:
without cookies, sessions and CSRF (the view is exempt) have nothing to
read or renew, Django's authentication and messages are untouched by a
bearer-token API call, and WhiteNoise serves only static files.

It takes only the common case: a JSON body of a given length, no query
string and no cookies, a body the quick reader (`accepted_request`)
accepts, from a client token, under the settings and view policies the
chain was checked against (`applies`). Anything else goes the full way,
having seen nothing the lane did but the token's check (which the chain
repeats). tests/tasks/test_admission_lane.py sends the same requests both
ways and compares the answers.
"""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import resolve, set_urlconf
from django.utils import timezone
from django.utils.log import log_response
from django_prometheus.middleware import PrometheusAfterMiddleware, PrometheusBeforeMiddleware
from django_prometheus.utils import Time
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from orchestrator.api.errors import answer_for
from orchestrator.api.parsers import json_object
from orchestrator.auth.authentication import authenticate_request
from orchestrator.auth.models import Role
from orchestrator.auth.services import Principal
from orchestrator.middleware import CorrelationIdMiddleware
from orchestrator.tasks.admission import admit_task
from orchestrator.tasks.api.views import TaskCollectionView
from orchestrator.tasks.requests import TaskRequest, accepted_request

PATH = "/v2/tasks"
# Accept headers DRF's negotiation answers with plain JSON.
ACCEPTED = ("*/*", "application/json")

# The chain the lane stands for; with any other, it stands aside.
MIDDLEWARE = [
    "orchestrator.middleware.CorrelationIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "orchestrator.middleware.ApiExceptionMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
VIEW_POLICIES = (
    "authentication_classes",
    "permission_classes",
    "throttle_classes",
    "parser_classes",
    "renderer_classes",
    "content_negotiation_class",
    "versioning_class",
)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["orchestrator.auth.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["orchestrator.auth.permissions.IsClient"],
    "DEFAULT_PARSER_CLASSES": ["orchestrator.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "orchestrator.api.errors.exception_handler",
}


def applies() -> bool:
    """Whether the settings are those the lane was checked against (tests/tasks/test_admission_lane.py)."""
    drf = getattr(settings, "REST_FRAMEWORK", {})
    return (
        list(settings.MIDDLEWARE) == MIDDLEWARE
        and all(drf.get(name) == value for name, value in REST_FRAMEWORK.items())
        and not drf.get("DEFAULT_THROTTLE_CLASSES")
        and not drf.get("DEFAULT_VERSIONING_CLASS")
        and not any(name in TaskCollectionView.__dict__ for name in VIEW_POLICIES)  # the view keeps the defaults
    )


def _has_length(request: HttpRequest) -> bool:
    """A positive Content-Length, as DRF needs to read a body at all (a chunked upload has none)."""
    length = request.META.get("CONTENT_LENGTH", "")
    return length.isascii() and length.isdigit() and int(length) > 0


def _unused(request: HttpRequest) -> HttpResponseBase:
    raise AssertionError("the lane calls the middleware's steps, never its chain")


class AdmissionLane:
    def __init__(self) -> None:
        self.correlation = CorrelationIdMiddleware(_unused)
        self.before = PrometheusBeforeMiddleware(_unused)
        self.security = SecurityMiddleware(_unused)
        self.common = CommonMiddleware(_unused)
        self.frames = XFrameOptionsMiddleware(_unused)
        self.after = PrometheusAfterMiddleware(_unused)
        self.match = resolve(PATH)
        view = TaskCollectionView()
        view.setup(HttpRequest())  # as `as_view()` does: HEAD answered as GET, so allowed
        self.view_headers = view.default_response_headers
        self.renderer = JSONRenderer()

    def respond(self, request: HttpRequest) -> HttpResponseBase | None:
        """The answer, as Django's `get_response` would give it; None: not the common case."""
        set_urlconf(settings.ROOT_URLCONF)
        state = self.correlation.before(request)
        started = Time()
        accepted = self._accepted(request)
        if accepted is None:
            return None
        # From here on, each middleware's steps in the chain's order, around the view; their
        # latencies from before the request was read, as in the chain.
        self.before.process_request(request)
        self.after.process_request(request)
        request.prometheus_before_middleware_event = request.prometheus_after_middleware_event = started  # type: ignore[attr-defined]
        request.resolver_match = self.match
        self.after.process_view(request, self.match.func, (), {})
        response = self._admit(request, *accepted)
        response = self.after.process_response(request, response)
        response = self.frames.process_response(request, response)
        response = cast(HttpResponse, self.common.process_response(request, response))  # the same object
        response = self.security.process_response(request, response)
        response = self.before.process_response(request, response)
        response = cast(HttpResponse, self.correlation.after(request, response, state))
        response._resource_closers.append(request.close)  # type: ignore[attr-defined]  # as get_response does
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        return response

    def _accepted(self, request: HttpRequest) -> tuple[Principal, TaskRequest] | None:
        """The principal and the task of a request the lane takes; before that, only the token check ran."""
        try:
            # Their request steps: an HTTPS redirect, a refused host or agent, a `www.` redirect.
            if self.security.process_request(request) or self.common.process_request(request):
                return None
            if request.content_type != "application/json" or request.headers.get("Accept", "*/*") not in ACCEPTED:
                return None  # DRF's parser and content negotiation (415, 406, `indent=`) word the rest
            if request.META.get("QUERY_STRING") or request.COOKIES or not _has_length(request):
                return None  # DRF's `?format=`; session and CSRF cookies; DRF reads no body without a length
            body = request.body
            if len(body) > settings.ORCHD_MAX_REQUEST_BYTES:
                return None
            task = accepted_request(json_object(body))
            if task is None:
                return None
            principal = authenticate_request(request)
        except Exception:  # noqa: BLE001 - a refused host, a bad token, a broken body...: the full chain words it
            return None
        if principal is None or not principal.has_role(Role.CLIENT):
            return None
        return principal, task

    def _admit(self, request: HttpRequest, principal: Principal, task: TaskRequest) -> HttpResponse:
        # As TaskCollectionView.post, and DRF's exception handler around it.
        try:
            admission = admit_task(task, principal, timezone.now())
        except Exception as exc:
            error = answer_for(exc)
            return self._rendered(request, error.envelope(), error.status, error.response_headers())
        headers = {"Location": f"{PATH}/{admission.task.id}", **admission.headers}
        return self._rendered(request, admission.body, 202, headers)

    def _rendered(self, request: HttpRequest, body: Any, status: int, headers: dict[str, str]) -> HttpResponse:
        """As DRF finalizes a view's `Response`, and Django renders it (with its template-response step)."""
        response = Response(body, status=status, headers=headers)
        response.accepted_renderer = self.renderer
        response.accepted_media_type = self.renderer.media_type
        response.renderer_context = {}  # type: ignore[attr-defined]  # set by DRF's view, as here
        for name, value in self.view_headers.items():
            response[name] = value
        self.after.process_template_response(request, response)  # counts; the same response
        response.render()
        return response
