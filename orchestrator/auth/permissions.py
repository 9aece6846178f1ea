"""Role checks (SPEC §2): operators may do everything."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from orchestrator.auth.models import Role
from orchestrator.auth.services import Principal


class _RolePermission(BasePermission):
    roles: tuple[str, ...] = ()

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = request.user
        if not isinstance(principal, Principal):
            return False  # DRF turns this into 401 MISSING_TOKEN
        if not principal.has_role(*self.roles):
            needed = " or ".join((*self.roles, Role.OPERATOR)) if self.roles else Role.OPERATOR
            raise PermissionDenied(f"This endpoint needs a token with the {needed} role.")
        return True


class IsClient(_RolePermission):
    roles = (Role.CLIENT,)


class IsNode(_RolePermission):
    roles = (Role.NODE,)


class IsOperator(_RolePermission):
    roles = ()


class IsAnyRole(_RolePermission):
    roles = (Role.CLIENT, Role.NODE)
