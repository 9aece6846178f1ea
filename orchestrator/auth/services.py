"""Issuing, resolving and revoking API tokens; who a request acts as."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from orchestrator.auth.digests import hash_token
from orchestrator.auth.models import ApiToken, Role
from orchestrator.sql import Select

logger = logging.getLogger("orchestrator.auth")

TOKEN_PREFIX = "orchd_"  # noqa: S105 - a public prefix, not a secret
# Writing last_used_at on every request would turn reads into writes; once a
# minute is enough to tell an operator which tokens are alive.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidToken(Exception):
    """The presented token is unknown, revoked or expired."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a token's role and, for node tokens, its node."""

    name: str
    role: str
    token_id: int | None = None
    fingerprint: str | None = None
    node_id: str | None = None
    is_authenticated: bool = True

    @property
    def label(self) -> str:
        return f"token:{self.fingerprint}" if self.fingerprint else self.name

    def has_role(self, *roles: str) -> bool:
        return self.role == Role.OPERATOR or self.role in roles


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    value: str


def fingerprint(value: str) -> str:
    return hash_token(value)[:6]


def issue_token(
    name: str,
    role: str,
    *,
    expires_at: datetime | None = None,
    node_id: str = "",
    created_by: str = "",
) -> IssuedToken:
    """Create a token; the returned value is the only time it is ever seen."""
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name,
        role=role,
        token_hash=hash_token(value),
        fingerprint=fingerprint(value),
        expires_at=expires_at,
        node_id=node_id,
        created_by=created_by,
    )
    logger.info("token.issued", extra={"token": f"token:{token.fingerprint}", "role": role, "token_name": name})
    return IssuedToken(token=token, value=value)


def assign_secret(token: ApiToken) -> str:
    """Give an unsaved token (e.g. from the admin form) a fresh secret value."""
    value = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token.token_hash = hash_token(value)
    token.fingerprint = fingerprint(value)
    return value


def revoke_token(token: ApiToken) -> bool:
    """Revoke once; True when this call did it (compare-and-swap)."""
    changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if changed:
        logger.info("token.revoked", extra={"token": f"token:{token.fingerprint}"})
    return changed == 1


# Every authenticated request runs this: SQL written once (orchestrator.sql).
_BY_HASH = Select(
    ApiToken,
    ("id", "name", "role", "token_hash", "fingerprint", "node_id", "expires_at", "revoked_at", "last_used_at"),
    '"token_hash" = %s',
)


def resolve_token(value: str) -> Principal:
    """The principal for a presented token value, or InvalidToken."""
    env_token = settings.ORCHD_API_TOKEN
    if env_token and hmac.compare_digest(value.encode(), env_token.encode()):
        return Principal(name="env", role=Role.OPERATOR, fingerprint=fingerprint(value))
    digest = hash_token(value)
    token = _BY_HASH.first(digest)
    # The lookup is by hash, so timing reveals nothing about the value; the
    # explicit comparison keeps the check itself constant-time as well.
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        raise InvalidToken("The token is not known.")
    now = timezone.now()
    if not token.is_usable(now):
        raise InvalidToken("The token is revoked or expired.")
    _touch(token, now)
    return Principal(
        name=token.name,
        role=token.role,
        token_id=token.pk,
        fingerprint=token.fingerprint,
        node_id=token.node_id or None,
    )


def _touch(token: ApiToken, now: datetime) -> None:
    """Record the use, at most once per LAST_USED_RESOLUTION (a write per request would cost more than the read)."""
    if token.last_used_at is not None and token.last_used_at >= now - LAST_USED_RESOLUTION:
        return  # as just read: fresh enough, no write
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def any_token_configured() -> bool:
    return bool(settings.ORCHD_API_TOKEN) or ApiToken.objects.exists()


def dev_mode_principal(request: HttpRequest) -> Principal | None:
    """The `localhost` operator of dev mode (SPEC §2), when it applies.

    Only when no token exists at all and the server listens on loopback, and
    only for requests that really arrived on a loopback address.
    """
    server = str(request.META.get("SERVER_NAME", ""))
    client = str(request.META.get("REMOTE_ADDR", ""))
    if not (is_loopback(settings.ORCHD_HOST) and is_loopback(server) and is_loopback(client)):
        return None
    if any_token_configured():
        return None
    return Principal(name="localhost", role=Role.OPERATOR)


def startup_refusal(host: str) -> str | None:
    """Why the server must not start on `host`, or None when it may."""
    if is_loopback(host) or any_token_configured():
        return None
    return (
        f"Refusing to listen on {host}: no API token exists, so the API would be open to the network. "
        "Create one with `manage.py create_token --role operator --name admin` or set ORCHD_API_TOKEN."
    )
