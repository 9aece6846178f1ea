import logging

import pytest
from rest_framework.views import APIView

from orchestrator.api.errors import ApiError, backoff_headers
from tests.conftest import assert_envelope

pytestmark = pytest.mark.django_db


def test_unknown_api_routes_get_a_json_404(alice):
    response = alice.get("/v2/definitely/not/here")

    body = assert_envelope(response, 404, "NOT_FOUND")
    assert "/v2/definitely/not/here" in body["message"]


def test_a_wrong_method_gets_a_405_envelope(alice):
    assert_envelope(alice.post("/v2/meta/version", {}), 405, "METHOD_NOT_ALLOWED")


def test_non_api_paths_keep_django_pages(alice):
    response = alice.get("/not-an-api-path")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_an_unhandled_exception_is_a_logged_500_envelope(alice, monkeypatch, caplog):
    def explode(self, request):
        raise RuntimeError("kaboom")

    from orchestrator.meta import views

    monkeypatch.setattr(views.VersionView, "get", explode)

    with caplog.at_level(logging.ERROR, logger="orchestrator.api"):
        response = alice.get("/v2/meta/version", headers={"X-Correlation-Id": "cid-500"})

    body = assert_envelope(response, 500, "INTERNAL")
    assert "kaboom" not in body["message"]
    record = next(r for r in caplog.records if r.getMessage() == "request.unhandled_exception")
    assert record.exc_info is not None
    assert record.correlation_id == "cid-500"


def test_an_exception_in_a_plain_api_view_is_a_500_envelope(client, monkeypatch):
    from orchestrator.meta import views

    def explode(registry):
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "generate_latest", explode)
    client.raise_request_exception = False

    response = client.get("/metrics")

    assert_envelope(response, 500, "INTERNAL")


def test_retriable_errors_carry_backoff_headers():
    error = ApiError(429, "ADMISSION_REJECT", "full", retry_after_ms=1500, policy_label="reject")

    assert error.envelope() == {
        "code": "ADMISSION_REJECT",
        "message": "full",
        "retriable": True,
        "retry_after_ms": 1500,
        "policy_label": "reject",
    }
    assert error.response_headers() == {"Retry-After": "2", "X-Backoff-Ms": "1500"}


@pytest.mark.parametrize(("ms", "seconds"), [(1, "1"), (999, "1"), (1000, "1"), (1001, "2"), (0, "1")])
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(ms, seconds):
    assert backoff_headers(ms)["Retry-After"] == seconds


def test_absent_optional_fields_are_omitted():
    body = ApiError(404, "NOT_FOUND", "gone").envelope()

    assert body == {"code": "NOT_FOUND", "message": "gone", "retriable": False}


def test_drf_views_use_the_envelope_handler():
    from rest_framework.settings import api_settings

    assert APIView().get_exception_handler() is api_settings.EXCEPTION_HANDLER
