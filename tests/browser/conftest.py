"""Browser tests of the operator console: headless Debian Chromium driven by Playwright.

The console is served by a real daphne process on the test database (the
dispatcher only runs there), started with the data plane's own `web`
fixture (tests.support.live). Users and groups are written to the database first; the browser
logs in through the real login form.

No browser is ever downloaded: Playwright drives /usr/bin/chromium
(`apt-get install chromium`). Without it these tests are skipped, unless
ORCHD_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import Browser, Page, sync_playwright

from tests.console.conftest import GROUPS_MIGRATION, staff_user
from tests.support.live import Client

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "console-pw"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("ORCHD_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    # Playwright's sync API keeps an asyncio loop marked as running in this
    # thread (its greenlets switch in and out of it), which Django takes for an
    # async context. The ORM calls of these tests (and the database flush after
    # each) are plain sync code, so allow them while the browser is up. The
    # web process under test never sees this variable (`console` clears it).
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def console(web: Callable[..., Client]) -> Client:
    """The web process serving the console (and the API, with alice's operator token)."""
    return web(DJANGO_ALLOW_ASYNC_UNSAFE="")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def console_users(transactional_db: None) -> dict[str, str]:
    """olivia operates and victor views; both log in with PASSWORD."""
    from django.apps import apps

    GROUPS_MIGRATION.create_groups(apps, None)  # a transactional test starts from an empty database
    from django.contrib.auth.models import Group

    for username, group in (("olivia", "operators"), ("victor", "viewers")):
        user = staff_user(username, Group.objects.get(name=group))
        # The web process verifies with its own hashers (the tests use MD5); few iterations keep login fast.
        user.password = PBKDF2PasswordHasher().encode(PASSWORD, secrets.token_hex(8), iterations=1000)
        user.save(update_fields=["password"])
    return {"operator": "olivia", "viewer": "victor"}


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")


def screenshot(page: Page, name: str, **options: Any) -> Path:
    """Saved under test-artifacts/ (CI keeps that folder); returns the path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), **options)
    return path


def copy_to_docs(path: Path) -> None:
    """With ORCHD_UPDATE_DOCS_SCREENSHOTS=1, refresh the screenshot committed under docs/."""
    if os.environ.get("ORCHD_UPDATE_DOCS_SCREENSHOTS") == "1":
        shutil.copyfile(path, Path(__file__).resolve().parents[2] / "docs" / path.name)
