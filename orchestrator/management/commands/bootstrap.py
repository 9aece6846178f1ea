"""`manage.py bootstrap`: migrate, then make the first operator token and admin login.

Credentials are printed once, when they are created; run again, it creates
nothing new. Values can be supplied instead through ORCHD_ADMIN_USER,
ORCHD_ADMIN_PASSWORD and ORCHD_API_TOKEN.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from orchestrator.auth.models import ApiToken, Role
from orchestrator.auth.services import issue_token
from orchestrator.env import env_optional_str, env_str


class Command(BaseCommand):
    help = "Migrate the database and create the first operator token and admin user."

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        self._ensure_operator_token()
        self._ensure_admin_user()

    def _ensure_operator_token(self) -> None:
        if settings.ORCHD_API_TOKEN:
            self.stdout.write("Operator API token: taken from ORCHD_API_TOKEN.")
            return
        if ApiToken.objects.usable_now().filter(role=Role.OPERATOR).exists():
            self.stdout.write("Operator API token: one exists already (make another with `manage.py create_token`).")
            return
        issued = issue_token("quickstart", Role.OPERATOR, created_by="manage.py bootstrap")
        self.stdout.write(self.style.WARNING(f"Operator API token (shown once, copy it now): {issued.value}"))

    def _ensure_admin_user(self) -> None:
        users = get_user_model()
        username = env_str("ORCHD_ADMIN_USER", "admin")
        if users.objects.filter(username=username).exists():
            self.stdout.write(f"Admin login: user '{username}' exists already.")
            return
        password = env_optional_str("ORCHD_ADMIN_PASSWORD")
        generated = password is None
        password = password or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, email="", password=password)
        if generated:
            self.stdout.write(self.style.WARNING(f"Admin login (shown once): {username} / {password}"))
        else:
            self.stdout.write(f"Admin login: user '{username}' with the password from ORCHD_ADMIN_PASSWORD.")
