"""The body of POST /v2/tasks, validated into a typed `TaskRequest` (SPEC §3.1)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rest_framework import serializers

from orchestrator.api.fields import IdField, ModelIdField, StrictBooleanField, StrictCharField, StrictIntegerField
from orchestrator.tasks.models import Priority, Workload
from pools.models import Engine

MAX_INPUTS = 256
MAX_PROMPT_CHARS = 4 * 1024 * 1024


@dataclass(frozen=True)
class Placement:
    mode: str = "auto"
    pin_pool_id: str | None = None
    prefer_pools: tuple[str, ...] = ()
    avoid_pools: tuple[str, ...] = ()
    require_device_mask: str | None = None
    allow_fallback: bool = True


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
        """Identifies the request body for idempotent retries of the same task_id."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def options(self) -> dict[str, Any]:
        """Everything that is not a column of Task, stored as JSON."""
        return {
            "seed": self.seed,
            "determinism": self.determinism,
            "sampler_profile_version": self.sampler_profile_version,
            "expected_tokens": self.expected_tokens,
            "kv_hint": self.kv_hint,
            "placement": asdict(self.placement),
        }


class IdListField(serializers.ListField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", IdField())
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)


class PlacementSerializer(serializers.Serializer[Placement]):
    mode = serializers.ChoiceField(choices=["pin", "prefer", "auto"], required=False, default="auto")
    pin_pool_id = IdField(required=False, allow_null=True, default=None)
    prefer_pools = IdListField(required=False, default=list)
    avoid_pools = IdListField(required=False, default=list)
    require_device_mask = StrictCharField(
        max_length=64, required=False, allow_null=True, allow_blank=True, default=None
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
    seed = StrictIntegerField(required=False, allow_null=True, min_value=-(2**63), max_value=2**63 - 1)
    determinism = serializers.ChoiceField(choices=["strict", "best_effort"], required=False, allow_null=True)
    sampler_profile_version = StrictCharField(max_length=64, required=False, allow_null=True)
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
