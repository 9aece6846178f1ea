"""`manage.py quickstart`: bootstrap (migrate, first credentials), then run."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Migrate, create the first operator token and admin login, then run web + worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None)
        parser.add_argument("--port", type=int, default=None)
        parser.add_argument("--demo", action="store_true", help="Also run a fake engine and a node agent.")

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("bootstrap")
        run_options: dict[str, object] = {key: options[key] for key in ("host", "port") if options[key] is not None}
        run_options["demo"] = options["demo"]
        call_command("run", **run_options)
