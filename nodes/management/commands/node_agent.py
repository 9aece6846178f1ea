"""`manage.py node_agent --config node.toml`: run the node agent until SIGTERM."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from nodes.agent.agent import NodeAgent
from nodes.agent.config import ConfigError, load_config


class Command(BaseCommand):
    help = "Register this node with the control plane, heartbeat its pools and carry out drain/reload/purge."
    # The agent runs on GPU nodes, which have no control-plane database to check.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--config", required=True, type=Path, help="TOML (.toml) or YAML file")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = load_config(options["config"])
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc
        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.stdout.write(f"node agent for {config.node_id} → {config.control_plane_url}")
        NodeAgent(config).run(stop)
