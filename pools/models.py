"""Pools: one engine instance serving models with N slots, on one node.

A pool holds two kinds of state. What *is* comes from the node's heartbeats
(ready, slots_free, models, engine_version, last_error). What *should be* is
set by operators through the API or admin (desired_draining, desired_model_ref,
purge_request) and handed to the agent in each heartbeat answer.
"""

from __future__ import annotations

from django.db import models

from nodes.models import Node, NodeStatus


class Engine(models.TextChoices):
    LLAMACPP = "llamacpp", "llama.cpp"
    VLLM = "vllm", "vLLM"
    TGI = "tgi", "TGI"
    TRITON = "triton", "Triton"
    OPENAI = "openai", "OpenAI-compatible"


class ReloadState(models.TextChoices):
    IDLE = "idle", "idle"
    PENDING = "pending", "pending"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


class PoolQuerySet(models.QuerySet["Pool"]):
    def on_online_nodes(self) -> PoolQuerySet:
        return self.filter(node__status=NodeStatus.ONLINE).select_related("node")

    def placeable(self) -> PoolQuerySet:
        """Pools that may receive new tasks: online node, ready, not draining."""
        return self.on_online_nodes().filter(ready=True, draining=False, desired_draining=False)


class Pool(models.Model):
    id = models.CharField(primary_key=True, max_length=128)
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="pools")
    engine = models.CharField(max_length=16, choices=Engine.choices)
    engine_url = models.CharField(max_length=500)
    engine_version = models.CharField(max_length=64, blank=True, default="")
    model_refs = models.JSONField(default=list, blank=True, help_text="models this pool serves (`models` in the API)")
    slots_total = models.PositiveIntegerField(default=1)
    slots_free = models.PositiveIntegerField(default=0)
    ctx_max = models.PositiveIntegerField(null=True, blank=True)
    device_mask = models.CharField(max_length=64, blank=True, default="")
    vram_total_bytes = models.BigIntegerField(null=True, blank=True)
    vram_free_bytes = models.BigIntegerField(null=True, blank=True)
    ready = models.BooleanField(default=False)
    draining = models.BooleanField(default=False, help_text="as reported by the node")
    last_error = models.TextField(blank=True, default="")
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Slots held by running tasks; changed only by compare-and-swap updates.
    active_leases = models.PositiveIntegerField(default=0)

    desired_draining = models.BooleanField(default=False)
    drain_started_at = models.DateTimeField(null=True, blank=True)
    drain_deadline_at = models.DateTimeField(null=True, blank=True)
    drained_at = models.DateTimeField(null=True, blank=True, help_text="when the last lease of a drain ended")
    desired_model_ref = models.CharField(max_length=128, blank=True, default="")
    reload_state = models.CharField(max_length=16, choices=ReloadState.choices, default=ReloadState.IDLE)
    reload_model_ref = models.CharField(max_length=128, blank=True, default="", help_text="target of the last reload")
    reload_error = models.TextField(blank=True, default="")
    reload_requested_at = models.DateTimeField(null=True, blank=True)
    purge_request = models.JSONField(
        null=True, blank=True, help_text="pending purge, with an id the agent reports back"
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PoolQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        # Operator actions in the console, granted to the `operators` group (console migration).
        permissions = [
            ("drain_pool", "Can drain and undrain pools"),
            ("reload_pool", "Can reload pools with another model"),
            ("purge_pool", "Can purge pools"),
        ]
        indexes = [
            # Read by enforce_drains(): pools draining past their deadline, or whose drain has not finished.
            models.Index(fields=["desired_draining", "drained_at"], name="pool_draining"),
        ]

    def __str__(self) -> str:
        return self.id

    def serves(self, model_ref: str) -> bool:
        return model_ref in (self.model_refs or [])

    @property
    def is_draining(self) -> bool:
        return self.desired_draining or self.draining
