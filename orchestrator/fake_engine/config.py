"""Engine settings and fault injection: what the command line and prompt markers can ask for."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.fake_engine.text import DEFAULT_TEXT

Protocol = Literal["llamacpp", "openai", "tgi"]
BusyPolicy = Literal["queue", "503"]

PROTOCOLS: tuple[Protocol, ...] = ("llamacpp", "openai", "tgi")

# What each protocol reports as its engine version unless --engine-version says otherwise.
DEFAULT_ENGINE_VERSIONS: dict[Protocol, str] = {
    "llamacpp": "b6500-fake",
    "openai": "0.11.0+fake",
    "tgi": "3.3.6-fake",
}

# `[[fault:die_after=3,split_utf8]]` anywhere in a prompt; `[[fault:none]]` clears the CLI faults.
FAULT_MARKER = re.compile(r"\[\[fault:([^\]]*)\]\]")

_INT_FAULTS = ("die_after", "stall_after", "status")
_FLOAT_FAULTS = ("ttft_ms", "tps")


class FaultSyntaxError(ValueError):
    """A fault spec that does not parse; the request (or the command) is refused."""


@dataclass(frozen=True)
class Fault:
    """Misbehaviour applied to one generation. None/False means "behave"."""

    die_after: int | None = None
    stall_after: int | None = None
    status: int | None = None
    split_utf8: bool = False
    ttft_ms: float | None = None
    tps: float | None = None

    def merged(self, override: Fault) -> Fault:
        """This fault with every field the override sets replaced."""
        changes = {f.name: getattr(override, f.name) for f in dataclasses.fields(self) if _is_set(override, f.name)}
        return dataclasses.replace(self, **changes)

    def ends_early(self) -> bool:
        return self.die_after is not None or self.stall_after is not None


def _is_set(fault: Fault, name: str) -> bool:
    value = getattr(fault, name)
    return value is not None and value is not False


def parse_fault(spec: str) -> Fault:
    """Parse `die_after=3,split_utf8,ttft_ms=50` (whitespace and empty items ignored)."""
    values: dict[str, Any] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        key, sep, raw = (s.strip() for s in item.partition("="))
        values[key] = _parse_fault_value(key, raw if sep else None)
    return Fault(**values)


def _parse_fault_value(key: str, raw: str | None) -> object:
    if key == "split_utf8":
        if raw not in (None, "1", "true"):
            raise FaultSyntaxError(f"split_utf8 takes no value, got {raw!r}")
        return True
    if key not in _INT_FAULTS + _FLOAT_FAULTS:
        raise FaultSyntaxError(f"unknown fault {key!r}")
    if raw is None:
        raise FaultSyntaxError(f"fault {key!r} needs a value, e.g. {key}=3")
    try:
        value: float = int(raw) if key in _INT_FAULTS else float(raw)
    except ValueError:
        raise FaultSyntaxError(f"fault {key}={raw!r} is not a number") from None
    if value < 0 or (key == "status" and not 400 <= value <= 599):
        raise FaultSyntaxError(f"fault {key}={raw!r} is out of range")
    return value


def faults_in_prompt(prompt: str, base: Fault) -> tuple[str, Fault]:
    """The prompt without fault markers, and `base` overridden by the markers in it."""
    fault = base
    for match in FAULT_MARKER.finditer(prompt):
        spec = match.group(1).strip()
        fault = Fault() if spec == "none" else fault.merged(parse_fault(spec))
    return FAULT_MARKER.sub("", prompt), fault


@dataclass(frozen=True)
class EngineConfig:
    """Everything `manage.py fake_engine` was started with."""

    protocol: Protocol = "llamacpp"
    model: str = "fake-model"
    slots: int = 1
    ttft_ms: float = 0.0
    tokens_per_s: float = 0.0
    text: str = DEFAULT_TEXT
    max_tokens_default: int = 32
    stop_after: int | None = None
    busy: BusyPolicy = "queue"
    fault: Fault = Fault()
    engine_version: str | None = None
    load_ms: float = 0.0
    ctx_size: int = 4096
    embedding_dim: int = 16

    @property
    def version(self) -> str:
        return self.engine_version or DEFAULT_ENGINE_VERSIONS[self.protocol]
