"""`manage.py run`: the web server (daphne), a Celery worker and Celery beat, supervised.

One command for a local or single-machine install. Children share the
metrics folder (multiprocess mode), which is wiped first because files left
by dead processes would otherwise be summed into the counters. If any child
exits, the others are stopped and the command exits with an error, so a
process manager around it sees the failure.

Beat is a child of its own, not the worker's embedded one (`worker --beat`):
that one is a process the worker forks after closing its inherited files,
which prometheus_client's multiprocess files were, so its first metric
update failed and it died unseen, with every scheduled job.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator.auth.services import startup_refusal

# How long children get to stop after SIGTERM before they are killed.
STOP_GRACE_S = 10


class Command(BaseCommand):
    help = "Run the web server, a Celery worker and Celery beat until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.ORCHD_HOST)
        parser.add_argument("--port", type=int, default=settings.ORCHD_PORT)
        parser.add_argument("--no-worker", action="store_true", help="Run only the web server.")
        parser.add_argument(
            "--demo", action="store_true", help="Also run a fake engine and a node agent serving 'demo-model'."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        refusal = startup_refusal(options["host"])
        if refusal:
            raise CommandError(refusal)
        env = self._child_env(options["host"], options["port"])
        children = self._start(self._commands(options), env)
        self.stdout.write(f"orchestratord listening on http://{options['host']}:{options['port']}/ (Ctrl-C stops)")
        code = self._supervise(children)
        if code:
            raise CommandError(f"a child process exited with status {code}; stopped the others")

    def _child_env(self, host: str, port: int) -> dict[str, str]:
        env = dict(os.environ, ORCHD_HOST=host, ORCHD_PORT=str(port))
        metrics_dir = Path(settings.ORCHD_METRICS_DIR or settings.DATA_DIR / "metrics")
        metrics_dir.mkdir(parents=True, exist_ok=True)
        # Only prometheus_client's files: values left by dead processes would be summed in.
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
        env["ORCHD_METRICS_DIR"] = str(metrics_dir)
        return env

    def _commands(self, options: dict[str, Any]) -> dict[str, list[str]]:
        python = sys.executable
        commands = {
            "web": [
                python,
                "-m",
                "daphne",
                "-b",
                options["host"],
                "-p",
                str(options["port"]),
                # Requests are logged as JSON by the middleware; daphne's own lines would repeat them.
                "--access-log",
                os.devnull,
                settings.ASGI_APPLICATION.replace(".application", ":application"),
            ],
        }
        if not options["no_worker"]:
            commands["worker"] = [
                python,
                "-m",
                "celery",
                "-A",
                "orchestrator",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
            ]
            commands["beat"] = [python, "-m", "celery", "-A", "orchestrator", "beat", "--loglevel", "INFO"]
        if options["demo"]:
            commands.update(demo_node_commands(options["host"], options["port"]))
        return commands

    def _start(self, commands: dict[str, list[str]], env: dict[str, str]) -> dict[str, subprocess.Popen[bytes]]:
        cwd = settings.BASE_DIR
        # Own sessions: a terminal's Ctrl-C reaches only this supervisor, which then
        # stops the children in order (the node agent deregisters while the web server is up).
        return {
            name: subprocess.Popen(command, env=env, cwd=cwd, start_new_session=True)
            for name, command in commands.items()
        }

    def _supervise(self, children: dict[str, subprocess.Popen[bytes]]) -> int:
        stopping = False

        def request_stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with status {child.returncode}")
                    exit_code = child.returncode or 1
                    stopping = True
            time.sleep(0.5)
        self._stop(children)
        return exit_code

    def _stop(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        """Stop in reverse start order: demo agent and engine, then beat and the worker, the web server last."""
        for child in reversed(children.values()):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()


def demo_node_commands(host: str, port: int) -> dict[str, list[str]]:
    """A fake llama.cpp engine and a node agent for it, so a new install shows a live pool."""
    from orchestrator.auth.models import ApiToken, Role
    from orchestrator.auth.services import issue_token

    config = Path(settings.DATA_DIR) / "demo-node.toml"
    if not config.exists() or not ApiToken.objects.usable_now().filter(node_id="demo-node").exists():
        token = issue_token("demo-node", Role.NODE, node_id="demo-node", created_by="manage.py run --demo").value
        config.write_text(
            f'control_plane_url = "http://{host}:{port}"\n'
            f'token = "{token}"\n'
            'node_id = "demo-node"\n'
            "[[pools]]\n"
            'pool_id = "demo-pool"\n'
            'engine = "llamacpp"\n'
            f'engine_url = "http://127.0.0.1:{_free_port()}"\n'
            'models = ["demo-model"]\n'
            "slots = 4\n"
            "ctx_max = 4096\n"
        )
        config.chmod(0o600)
    engine_url = tomllib.loads(config.read_text())["pools"][0]["engine_url"]
    engine_port = engine_url.rsplit(":", 1)[1]
    python, manage = sys.executable, str(Path(settings.BASE_DIR) / "manage.py")
    engine = [python, manage, "fake_engine", "--protocol", "llamacpp", "--port", engine_port, "--model", "demo-model"]
    return {
        "demo-engine": [*engine, "--slots", "4", "--tokens-per-s", "25", "--ctx-size", "4096"],
        "demo-agent": [python, manage, "node_agent", "--config", str(config)],
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
