"""Response shape of `GET /v2/sessions/{id}` (SPEC §4)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class SessionSerializer(serializers.Serializer[Any]):
    """A live session; budgets are null when unlimited, cost is a JSON number."""

    session_id = serializers.CharField()
    ttl_ms_remaining = serializers.IntegerField()
    turns = serializers.IntegerField()
    kv_bytes = serializers.IntegerField()
    kv_warmth = serializers.BooleanField()
    tokens_budget_remaining = serializers.IntegerField(allow_null=True)
    time_budget_remaining_ms = serializers.IntegerField(allow_null=True)
    cost_budget_remaining = serializers.FloatField(allow_null=True)
    last_pool_id = serializers.CharField(allow_null=True)
