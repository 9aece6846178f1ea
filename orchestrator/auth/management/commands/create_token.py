"""`manage.py create_token --role ROLE --name NAME`: prints a new token once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from orchestrator.audit.services import Source, record
from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token
from orchestrator.ids import id_error


class Command(BaseCommand):
    help = "Create an API token and print its value (shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", required=True, choices=[role.value for role in Role])
        parser.add_argument("--name", required=True)
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--node-id", default="", help="Bind a node token to this node id.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["node_id"] and id_error(options["node_id"]):
            raise CommandError(f"--node-id {id_error(options['node_id'])}")
        days = options["expires_in_days"]
        if days is not None and days <= 0:
            raise CommandError("--expires-in-days must be positive")
        issued = issue_token(
            options["name"],
            options["role"],
            expires_at=timezone.now() + timedelta(days=days) if days else None,
            node_id=options["node_id"],
            created_by="manage.py create_token",
        )
        record(
            "cli",
            "token.create",
            issued.token,
            source=Source.CLI,
            fingerprint=f"token:{issued.token.fingerprint}",
            role=options["role"],
            name=options["name"],
        )
        self.stdout.write(issued.value)
        self.stderr.write(f"Created {options['role']} token '{options['name']}' (token:{issued.token.fingerprint}).")
