import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token, startup_refusal
from tests.conftest import assert_envelope

pytestmark = pytest.mark.django_db

LOOPBACK = {"SERVER_NAME": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1"}


def test_without_any_token_loopback_requests_are_allowed_as_localhost(client):
    response = client.get("/v2/meta/capabilities", **LOOPBACK)

    assert response.status_code == 200


def test_dev_mode_ends_once_a_token_exists(client):
    issue_token("alice", Role.OPERATOR)

    response = client.get("/v2/meta/capabilities", **LOOPBACK)

    assert_envelope(response, 401, "MISSING_TOKEN")


def test_dev_mode_does_not_apply_when_the_env_token_is_set(client, settings):
    settings.ORCHD_API_TOKEN = "x" * 40

    assert_envelope(client.get("/v2/meta/capabilities", **LOOPBACK), 401, "MISSING_TOKEN")


@pytest.mark.parametrize(
    "meta",
    [
        {"SERVER_NAME": "10.1.2.3", "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1"},
        {"SERVER_NAME": "127.0.0.1", "REMOTE_ADDR": "192.168.1.7"},
    ],
)
def test_dev_mode_needs_loopback_on_both_ends(client, meta):
    assert_envelope(client.get("/v2/meta/capabilities", **meta), 401, "MISSING_TOKEN")


def test_dev_mode_needs_a_loopback_bind_address(client, settings):
    settings.ORCHD_HOST = "0.0.0.0"  # noqa: S104 - the case under test

    assert_envelope(client.get("/v2/meta/capabilities", **LOOPBACK), 401, "MISSING_TOKEN")


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "example.org"])  # noqa: S104
def test_the_server_refuses_a_public_address_without_a_token(host):
    assert "Refusing to listen" in (startup_refusal(host) or "")


def test_the_server_may_listen_publicly_once_a_token_exists():
    issue_token("alice", Role.OPERATOR)

    assert startup_refusal("0.0.0.0") is None  # noqa: S104


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_addresses_are_always_allowed(host):
    assert startup_refusal(host) is None


def test_create_token_refuses_a_bad_node_id():
    with pytest.raises(CommandError):
        call_command("create_token", "--role", "node", "--name", "n", "--node-id", "../etc")
