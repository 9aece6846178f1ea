"""Bearer-token authentication for DRF views and plain Django views alike."""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.request import Request

from orchestrator import logs
from orchestrator.auth.services import InvalidToken, Principal, dev_mode_principal, resolve_token


def authenticate_request(request: HttpRequest) -> Principal | None:
    """The request's principal; None when no credential was offered.

    Raises NotAuthenticated for a non-Bearer Authorization header (SPEC: no
    Bearer header is MISSING_TOKEN) and AuthenticationFailed for a bad token.
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        principal = dev_mode_principal(request)
    else:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise NotAuthenticated("Use an 'Authorization: Bearer <token>' header.")
        try:
            principal = resolve_token(value.strip())
        except InvalidToken as exc:
            raise AuthenticationFailed(str(exc)) from exc
    if principal is not None:
        request.principal_label = principal.label  # type: ignore[attr-defined]
        logs.bind(principal=principal.label)
    return principal


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Principal, None] | None:
        principal = authenticate_request(request._request)
        return None if principal is None else (principal, None)

    def authenticate_header(self, request: Request) -> str:
        # Present, so DRF answers 401 (not 403) when credentials are missing.
        return 'Bearer realm="orchestratord"'
