"""`manage.py fake_engine`: a deterministic LLM engine speaking llama.cpp, OpenAI or TGI.

It never touches the database, so it runs on a fresh checkout before
`migrate`. Faults given with --fault apply to every request; a marker in the
prompt such as `[[fault:die_after=3,split_utf8]]` overrides them for one
request (`[[fault:none]]` clears them), so one process serves many test cases.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator import heap
from orchestrator.fake_engine.app import serve
from orchestrator.fake_engine.config import PROTOCOLS, EngineConfig, Fault, FaultSyntaxError, parse_fault
from orchestrator.fake_engine.text import DEFAULT_TEXT, split_pieces


class Command(BaseCommand):
    help = "Serve a fake LLM engine (llama.cpp, OpenAI or TGI wire format) with deterministic output."

    # Checks may query the database, which need not exist for this command.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8090, help="0 picks a free port (printed when ready).")
        parser.add_argument("--protocol", choices=PROTOCOLS, default="llamacpp")
        parser.add_argument("--model", default="fake-model", help="Model name/path the engine reports.")
        parser.add_argument("--slots", type=int, default=1, help="Generations that run at once.")
        parser.add_argument("--ttft-ms", type=float, default=50.0, help="Time to first token.")
        parser.add_argument("--tokens-per-s", type=float, default=50.0, help="Decode rate; 0 = as fast as possible.")
        parser.add_argument("--text", default=DEFAULT_TEXT, help="Text the tokens are cut from, cycled as needed.")
        parser.add_argument("--max-tokens-default", type=int, default=32, help="When a request sets no maximum.")
        parser.add_argument("--stop-after", type=int, default=None, help="End with 'stop' after this many tokens.")
        parser.add_argument("--busy", choices=("queue", "503"), default="queue", help="When every slot is taken.")
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            help="Fault for every request, e.g. die_after=3, stall_after=2, status=503, split_utf8, ttft_ms=10, tps=5. "
            "Repeatable or comma-separated.",
        )
        parser.add_argument("--engine-version", default=None, help="Version/build the engine reports.")
        parser.add_argument("--load-ms", type=float, default=0.0, help="Answer 503 'loading' this long after start.")
        parser.add_argument(
            "--ctx-size", type=int, default=4096, help="Context length: reported, and caps prompt + output."
        )
        parser.add_argument("--embedding-dim", type=int, default=16)

    def handle(self, *args: Any, **options: Any) -> None:
        config = self._config(options)

        def announce(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        # As the web process does: its own 50–70 ms collector pauses would show as the engine's.
        heap.freeze_startup_heap()
        asyncio.run(serve(config, options["host"], options["port"], announce))

    def _config(self, options: dict[str, Any]) -> EngineConfig:
        for name in ("slots", "max_tokens_default", "ctx_size", "embedding_dim"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("ttft_ms", "tokens_per_s", "load_ms"):
            if options[name] < 0:
                raise CommandError(f"--{name.replace('_', '-')} must not be negative")
        if options["stop_after"] is not None and options["stop_after"] < 0:
            raise CommandError("--stop-after must not be negative")
        try:
            split_pieces(options["text"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        return EngineConfig(
            protocol=options["protocol"],
            model=options["model"],
            slots=options["slots"],
            ttft_ms=options["ttft_ms"],
            tokens_per_s=options["tokens_per_s"],
            text=options["text"],
            max_tokens_default=options["max_tokens_default"],
            stop_after=options["stop_after"],
            busy=options["busy"],
            fault=self._fault(options["fault"]),
            engine_version=options["engine_version"],
            load_ms=options["load_ms"],
            ctx_size=options["ctx_size"],
            embedding_dim=options["embedding_dim"],
        )

    def _fault(self, specs: list[str]) -> Fault:
        fault = Fault()
        try:
            for spec in specs:
                fault = fault.merged(parse_fault(spec))
        except FaultSyntaxError as exc:
            raise CommandError(f"--fault: {exc}") from exc
        return fault
