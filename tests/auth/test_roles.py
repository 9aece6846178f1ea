import pytest
from rest_framework.test import APIRequestFactory

from orchestrator.auth.models import Role
from orchestrator.auth.permissions import IsClient, IsNode, IsOperator
from orchestrator.auth.services import Principal

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        (Role.CLIENT, IsClient, True),
        (Role.NODE, IsClient, False),
        (Role.OPERATOR, IsClient, True),
        (Role.CLIENT, IsNode, False),
        (Role.NODE, IsNode, True),
        (Role.OPERATOR, IsNode, True),
        (Role.CLIENT, IsOperator, False),
        (Role.NODE, IsOperator, False),
        (Role.OPERATOR, IsOperator, True),
    ],
)
def test_operators_may_do_everything_and_others_only_their_role(role, permission, allowed):
    from rest_framework.exceptions import PermissionDenied
    from rest_framework.request import Request

    request = Request(APIRequestFactory().get("/"))
    request.user = Principal(name="someone", role=role)  # type: ignore[assignment]

    if allowed:
        assert permission().has_permission(request, None) is True
    else:
        with pytest.raises(PermissionDenied):
            permission().has_permission(request, None)
