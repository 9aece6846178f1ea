import hashlib
import io
import logging
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orchestrator.auth.models import ApiToken, Role
from orchestrator.auth.services import LAST_USED_RESOLUTION, issue_token, revoke_token
from tests.conftest import assert_envelope

pytestmark = pytest.mark.django_db


def test_it_stores_only_the_hash_of_a_token():
    issued = issue_token("alice", Role.OPERATOR)

    stored = ApiToken.objects.get(pk=issued.token.pk)
    assert stored.token_hash == hashlib.sha256(issued.value.encode()).hexdigest()
    assert issued.value not in {str(value) for value in vars(stored).values()}
    assert stored.fingerprint == stored.token_hash[:6]


def test_tokens_carry_at_least_32_bytes_of_entropy():
    values = {issue_token(f"t{i}", Role.CLIENT).value for i in range(5)}

    assert len(values) == 5
    assert all(len(value.removeprefix("orchd_")) >= 43 for value in values)  # 32 bytes, base64


def test_a_request_without_a_token_gets_401_missing_token(api, alice_token):
    body = assert_envelope(api.get("/v2/meta/capabilities"), 401, "MISSING_TOKEN")

    assert "Bearer" in body["message"]


def test_a_non_bearer_scheme_counts_as_missing(api, alice_token):
    response = api.get("/v2/meta/capabilities", headers={"Authorization": "Basic YWxpY2U6cHc="})

    assert_envelope(response, 401, "MISSING_TOKEN")


def test_an_unknown_token_gets_401_bad_token(charlie):
    assert_envelope(charlie.get("/v2/meta/capabilities"), 401, "BAD_TOKEN")


def test_a_revoked_token_gets_401_bad_token(api):
    issued = issue_token("bob", Role.CLIENT)
    revoke_token(issued.token)

    assert_envelope(api.as_token(issued.value).get("/v2/meta/capabilities"), 401, "BAD_TOKEN")


def test_an_expired_token_gets_401_bad_token(api):
    issued = issue_token("bob", Role.CLIENT, expires_at=timezone.now() + timedelta(hours=1))

    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = api.as_token(issued.value).get("/v2/meta/capabilities")

    assert_envelope(response, 401, "BAD_TOKEN")


def test_revoking_twice_reports_one_revocation():
    issued = issue_token("bob", Role.CLIENT)

    assert revoke_token(issued.token) is True
    assert revoke_token(issued.token) is False


def test_a_valid_token_is_accepted_and_its_use_recorded(bob):
    response = bob.get("/v2/meta/capabilities")

    assert response.status_code == 200
    assert ApiToken.objects.get(name="bob").last_used_at is not None


def test_the_env_token_acts_as_an_operator(api, settings):
    settings.ORCHD_API_TOKEN = "env-secret-token-value-with-enough-entropy"

    response = api.as_token(settings.ORCHD_API_TOKEN).get("/v2/meta/capabilities")

    assert response.status_code == 200


def test_logs_name_a_token_by_fingerprint_never_by_value(bob, bob_token, caplog):
    with caplog.at_level(logging.INFO, logger="orchestrator.http"):
        bob.get("/v2/meta/version")

    record = next(r for r in caplog.records if r.getMessage() == "http.request")
    fingerprint = hashlib.sha256(bob_token.encode()).hexdigest()[:6]
    assert record.principal == f"token:{fingerprint}"
    assert all(bob_token not in str(value) for value in vars(record).values())


def test_create_token_prints_the_value_once():
    out, err = io.StringIO(), io.StringIO()

    call_command("create_token", "--role", "client", "--name", "ci", stdout=out, stderr=err)

    value = out.getvalue().strip()
    token = ApiToken.objects.get(name="ci")
    assert token.role == Role.CLIENT
    assert token.token_hash == hashlib.sha256(value.encode()).hexdigest()
    assert value not in err.getvalue()


def test_a_recent_use_is_not_written_again(bob):
    bob.get("/v2/meta/version")
    recorded = ApiToken.objects.get(name="bob").last_used_at

    with CaptureQueriesContext(connection) as queries:
        assert bob.get("/v2/meta/version").status_code == 200

    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")], "no write for a fresh use"
    assert ApiToken.objects.get(name="bob").last_used_at == recorded


def test_a_use_after_the_resolution_is_recorded(bob):
    bob.get("/v2/meta/version")
    first = ApiToken.objects.get(name="bob").last_used_at
    assert first is not None

    with time_machine.travel(timezone.now() + LAST_USED_RESOLUTION + timedelta(seconds=1)):
        bob.get("/v2/meta/version")

    later = ApiToken.objects.get(name="bob").last_used_at
    assert later is not None
    assert later > first + LAST_USED_RESOLUTION
