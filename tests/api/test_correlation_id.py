import uuid

import pytest

pytestmark = pytest.mark.django_db


def test_it_echoes_a_valid_correlation_id(alice):
    response = alice.get("/v2/meta/version", headers={"X-Correlation-Id": "req-42:abc"})

    assert response.status_code == 200
    assert response["X-Correlation-Id"] == "req-42:abc"


@pytest.mark.parametrize("offered", ["", "has space", "x" * 129, "tab\there", "ünïcode"])
def test_it_replaces_an_invalid_correlation_id_with_a_uuid4(alice, offered):
    response = alice.get("/v2/meta/version", headers={"X-Correlation-Id": offered})

    echoed = response["X-Correlation-Id"]
    assert echoed != offered
    assert uuid.UUID(echoed).version == 4


def test_it_accepts_128_visible_ascii_characters(alice):
    offered = "!" + "a" * 126 + "~"

    response = alice.get("/v2/meta/version", headers={"X-Correlation-Id": offered})

    assert response["X-Correlation-Id"] == offered


@pytest.mark.parametrize(
    ("path", "expected_status"),
    [("/v2/meta/version", 401), ("/v2/no-such-endpoint", 404), ("/healthz", 200), ("/metrics", 200)],
)
def test_every_response_carries_a_correlation_id(api, alice_token, path, expected_status):
    response = api.get(path, headers={"X-Correlation-Id": "trace-1"})

    assert response.status_code == expected_status
    assert response["X-Correlation-Id"] == "trace-1"
