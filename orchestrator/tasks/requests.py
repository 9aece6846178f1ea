"""The body of POST /v2/tasks, validated into a typed `TaskRequest` (SPEC §3.1)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field, fields
from typing import Any

from rest_framework import serializers

from orchestrator.api.fields import IdField, ModelIdField, StrictBooleanField, StrictCharField, StrictIntegerField
from orchestrator.ids import MAX_ID_LENGTH, is_valid_id, is_valid_model_id
from orchestrator.tasks.models import Priority, Workload
from pools.models import Engine

MAX_INPUTS = 256
MAX_PROMPT_CHARS = 4 * 1024 * 1024
# Pools named in `prefer_pools` / `avoid_pools`; characters of a short label field.
MAX_POOL_IDS = 64
MAX_LABEL_CHARS = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Placement:
    mode: str = "auto"
    pin_pool_id: str | None = None
    prefer_pools: tuple[str, ...] = ()
    avoid_pools: tuple[str, ...] = ()
    require_device_mask: str | None = None
    allow_fallback: bool = True

    def plain(self) -> dict[str, Any]:
        """As `dataclasses.asdict` gives it (its values are plain already: no deep copies)."""
        return {name: getattr(self, name) for name in _PLACEMENT_FIELDS}


_PLACEMENT_FIELDS = tuple(field.name for field in fields(Placement))


@dataclass(frozen=True)
class TaskRequest:
    task_id: str
    session_id: str
    workload: str
    model_ref: str
    engine: str
    ctx: int
    priority: str
    max_tokens: int
    deadline_ms: int
    prompt: str = ""
    inputs: tuple[str, ...] = ()
    seed: int | None = None
    determinism: str | None = None
    sampler_profile_version: str | None = None
    expected_tokens: int | None = None
    kv_hint: str | None = None
    placement: Placement = field(default_factory=Placement)

    def digest(self) -> str:
        """Identifies the request body for idempotent retries of the same task_id.

        The SHA-256 of the canonical JSON of `dataclasses.asdict(self)` (stored digests
        depend on it: keep it so), built without `asdict`'s deep copies, which cost
        most of it (every value here is a string, a number, None or a tuple of strings).
        """
        plain = {name: getattr(self, name) for name in _REQUEST_FIELDS}
        plain["placement"] = self.placement.plain()
        canonical = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def options(self) -> dict[str, Any]:
        """Everything that is not a column of Task, stored as JSON."""
        return {
            "seed": self.seed,
            "determinism": self.determinism,
            "sampler_profile_version": self.sampler_profile_version,
            "expected_tokens": self.expected_tokens,
            "kv_hint": self.kv_hint,
            "placement": self.placement.plain(),
        }


_REQUEST_FIELDS = tuple(field.name for field in fields(TaskRequest))


class IdListField(serializers.ListField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", IdField())
        kwargs.setdefault("max_length", MAX_POOL_IDS)
        super().__init__(**kwargs)


class PlacementSerializer(serializers.Serializer[Placement]):
    mode = serializers.ChoiceField(choices=["pin", "prefer", "auto"], required=False, default="auto")
    pin_pool_id = IdField(required=False, allow_null=True, default=None)
    prefer_pools = IdListField(required=False, default=list)
    avoid_pools = IdListField(required=False, default=list)
    require_device_mask = StrictCharField(
        max_length=MAX_LABEL_CHARS, required=False, allow_null=True, allow_blank=True, default=None
    )
    allow_fallback = StrictBooleanField(required=False, default=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["mode"] == "pin" and not attrs.get("pin_pool_id"):
            raise serializers.ValidationError({"pin_pool_id": ["required when mode is 'pin'"]})
        return attrs


class TaskRequestSerializer(serializers.Serializer[TaskRequest]):
    task_id = IdField()
    session_id = IdField()
    workload = serializers.ChoiceField(choices=Workload.choices)
    model_ref = ModelIdField()
    engine = serializers.ChoiceField(choices=Engine.choices)
    ctx = StrictIntegerField(min_value=1)
    priority = serializers.ChoiceField(choices=Priority.choices)
    max_tokens = StrictIntegerField(min_value=1)
    deadline_ms = StrictIntegerField(min_value=1)
    prompt = StrictCharField(required=False, allow_blank=True, trim_whitespace=False, max_length=MAX_PROMPT_CHARS)
    inputs = serializers.ListField(
        child=StrictCharField(allow_blank=True, trim_whitespace=False, max_length=MAX_PROMPT_CHARS),
        required=False,
        max_length=MAX_INPUTS,
    )
    seed = StrictIntegerField(required=False, allow_null=True, min_value=INT64_MIN, max_value=INT64_MAX)
    determinism = serializers.ChoiceField(choices=["strict", "best_effort"], required=False, allow_null=True)
    sampler_profile_version = StrictCharField(max_length=MAX_LABEL_CHARS, required=False, allow_null=True)
    expected_tokens = StrictIntegerField(required=False, allow_null=True, min_value=0)
    kv_hint = serializers.ChoiceField(choices=["reuse", "cold"], required=False, allow_null=True)
    placement = PlacementSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["workload"] == Workload.COMPLETION and "prompt" not in attrs:
            raise serializers.ValidationError({"prompt": ["required for a completion"]})
        if attrs["workload"] != Workload.COMPLETION and not attrs.get("inputs"):
            raise serializers.ValidationError({"inputs": [f"required (non-empty) for {attrs['workload']}"]})
        return attrs

    def to_request(self) -> TaskRequest:
        data = self.validated_data
        placement = data.get("placement") or {}
        return TaskRequest(
            task_id=data["task_id"],
            session_id=data["session_id"],
            workload=data["workload"],
            model_ref=data["model_ref"],
            engine=data["engine"],
            ctx=data["ctx"],
            priority=data["priority"],
            max_tokens=data["max_tokens"],
            deadline_ms=data["deadline_ms"],
            prompt=data.get("prompt", ""),
            inputs=tuple(data.get("inputs") or ()),
            seed=data.get("seed"),
            determinism=data.get("determinism"),
            sampler_profile_version=data.get("sampler_profile_version"),
            expected_tokens=data.get("expected_tokens"),
            kv_hint=data.get("kv_hint"),
            placement=Placement(
                mode=placement.get("mode", "auto"),
                pin_pool_id=placement.get("pin_pool_id"),
                prefer_pools=tuple(placement.get("prefer_pools") or ()),
                avoid_pools=tuple(placement.get("avoid_pools") or ()),
                require_device_mask=placement.get("require_device_mask"),
                allow_fallback=placement.get("allow_fallback", True),
            ),
        )


# --- The common case without DRF -----------------------------------------------------------
#
# DRF's serializer costs ~0.6 ms per body here (mostly copying its 17 field objects), on the
# path every admission takes. `accepted_request` reads a body the way the serializer does
# but only ever says yes or "ask the serializer": whatever it is unsure of (a wrong type, a
# null, a value out of range) returns None, and the serializer then validates the body and
# words the error. So errors stay the serializer's, and for a body it accepts the two agree
# exactly (tests/tasks/test_accepted_request.py checks both on generated bodies).

WORKLOADS = frozenset(Workload.values)
ENGINES = frozenset(Engine.values)
PRIORITIES = frozenset(Priority.values)
# What DRF's CharField refuses in any string: NUL and lone surrogates.
_PROHIBITED = re.compile("[\x00\ud800-\udfff]")


class _Unsure(Exception):
    """Not certainly valid: the serializer decides."""


def accepted_request(data: Any) -> TaskRequest | None:
    """The request, if the serializer would certainly accept `data` as this; None to ask it."""
    if type(data) is not dict:
        return None
    try:
        return _accepted(data)
    except _Unsure:
        return None


def _accepted(data: dict[str, Any]) -> TaskRequest:
    workload = _choice(data, "workload", WORKLOADS)
    prompt = data.get("prompt", _MISSING)
    inputs = data.get("inputs", _MISSING)
    if workload == Workload.COMPLETION and prompt is _MISSING:
        raise _Unsure
    if workload != Workload.COMPLETION and (inputs is _MISSING or not inputs):
        raise _Unsure
    if inputs is not _MISSING and not (type(inputs) is list and len(inputs) <= MAX_INPUTS):
        raise _Unsure
    return TaskRequest(
        task_id=_id(data.get("task_id")),
        session_id=_id(data.get("session_id")),
        workload=workload,
        model_ref=_checked(data.get("model_ref"), is_valid_model_id),
        engine=_choice(data, "engine", ENGINES),
        ctx=_int(data.get("ctx"), 1, INT64_MAX),
        priority=_choice(data, "priority", PRIORITIES),
        max_tokens=_int(data.get("max_tokens"), 1, INT64_MAX),
        deadline_ms=_int(data.get("deadline_ms"), 1, INT64_MAX),
        prompt="" if prompt is _MISSING else _text(prompt, MAX_PROMPT_CHARS),
        inputs=() if inputs is _MISSING else tuple(_text(one, MAX_PROMPT_CHARS) for one in inputs),
        seed=_optional(data, "seed", lambda value: _int(value, INT64_MIN, INT64_MAX)),
        determinism=_optional(data, "determinism", lambda value: _one_of(value, ("strict", "best_effort"))),
        sampler_profile_version=_optional(
            data, "sampler_profile_version", lambda value: _text(value, MAX_LABEL_CHARS, blank=False, trimmed=True)
        ),
        expected_tokens=_optional(data, "expected_tokens", lambda value: _int(value, 0, INT64_MAX)),
        kv_hint=_optional(data, "kv_hint", lambda value: _one_of(value, ("reuse", "cold"))),
        placement=_placement(data.get("placement", _MISSING)),
    )


_MISSING = object()


def _placement(data: Any) -> Placement:
    if data is _MISSING:
        return Placement()
    if type(data) is not dict:
        raise _Unsure
    mode = _one_of(data.get("mode", "auto"), ("pin", "prefer", "auto"))
    pin_pool_id = _optional(data, "pin_pool_id", _id)
    if mode == "pin" and not pin_pool_id:
        raise _Unsure
    allow_fallback = data.get("allow_fallback", True)
    if type(allow_fallback) is not bool:
        raise _Unsure
    return Placement(
        mode=mode,
        pin_pool_id=pin_pool_id,
        prefer_pools=_ids(data.get("prefer_pools", [])),
        avoid_pools=_ids(data.get("avoid_pools", [])),
        require_device_mask=_optional(
            data, "require_device_mask", lambda value: _text(value, MAX_LABEL_CHARS, trimmed=True)
        ),
        allow_fallback=allow_fallback,
    )


def _choice(data: dict[str, Any], name: str, choices: Collection[str]) -> str:
    return _one_of(data.get(name), choices)


def _one_of(value: Any, choices: Collection[str]) -> str:
    if type(value) is not str or value not in choices:
        raise _Unsure
    return value


def _id(value: Any) -> str:
    return _checked(value, is_valid_id)


def _checked(value: Any, valid: Any) -> str:
    if type(value) is not str or len(value) > MAX_ID_LENGTH or not valid(value):
        raise _Unsure
    return value


def _ids(value: Any) -> tuple[str, ...]:
    if type(value) is not list or len(value) > MAX_POOL_IDS:
        raise _Unsure
    return tuple(_id(one) for one in value)


def _int(value: Any, minimum: int, maximum: int) -> int:
    if type(value) is not int or not minimum <= value <= maximum:
        raise _Unsure
    return value


def _text(value: Any, max_length: int, *, blank: bool = True, trimmed: bool = False) -> str:
    """A string as a CharField keeps it; `trimmed`: one that trims whitespace (so none may be there)."""
    if type(value) is not str or len(value) > max_length or (not blank and not value) or _PROHIBITED.search(value):
        raise _Unsure
    if trimmed and value != value.strip():
        raise _Unsure
    return value


def _optional(data: dict[str, Any], name: str, check: Any) -> Any:
    value = data.get(name)
    return None if value is None else check(value)
