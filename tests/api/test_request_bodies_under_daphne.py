"""Under daphne, every request body reaches Django as sent: Twisted parses none of them first.

Twisted's own form parsing (which daphne never used) answered a multipart body
it could not parse itself: a bare 400, no error envelope, the connection closed.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MALFORMED_MULTIPART = {
    "not multipart at all": ("multipart/form-data; boundary=xyz", b"not a multipart body"),
    "no boundary": ("multipart/form-data", b"--xyz\r\n\r\n"),
}


@pytest.mark.parametrize(("content_type", "body"), MALFORMED_MULTIPART.values(), ids=MALFORMED_MULTIPART.keys())
def test_a_malformed_multipart_body_gets_the_api_envelope(web: Any, content_type: str, body: bytes) -> None:
    client = web()

    response = client.http.post("/v2/tasks", content=body, headers={"Content-Type": content_type})

    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_a_form_body_still_reaches_django(web: Any) -> None:
    # given: a staff user, and the admin's login form (urlencoded, with its CSRF token)
    user = User.objects.create(username="olga", is_staff=True, is_superuser=True)
    user.password = PBKDF2PasswordHasher().encode("pw-olga", secrets.token_hex(8), iterations=1000)
    user.save(update_fields=["password"])
    server = web().server
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        form = browser.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token is not None, form.text[:500]

        # when
        response = browser.post(
            "/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token.group(1), "username": "olga", "password": "pw-olga"},
            headers={"Referer": f"{server.url}/admin/login/"},
        )

        # then: Django read every field of the form and logged the user in
        assert response.status_code == 302, response.text[:500]
        assert response.headers["location"] == "/admin/"
        assert browser.get("/admin/").status_code == 200
