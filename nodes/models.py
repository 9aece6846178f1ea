"""GPU nodes: registered machines that heartbeat their pools' live state."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models


class NodeStatus(models.TextChoices):
    REGISTERING = "registering", "registering"
    ONLINE = "online", "online"
    STALE = "stale", "stale"
    OFFLINE = "offline", "offline"


class NodeQuerySet(models.QuerySet["Node"]):
    def online(self) -> NodeQuerySet:
        return self.filter(status=NodeStatus.ONLINE)


class Node(models.Model):
    """One GPU machine. Each heartbeat stores the node's own expiry deadlines.

    `stale_at` and `offline_at` are precomputed at every heartbeat so the
    expiry job only compares them with the clock (indexed, no arithmetic in
    SQL) and flips status with compare-and-swap updates.
    """

    STATIC_NODE_ID = "static"

    id = models.CharField(primary_key=True, max_length=128)
    machine_id = models.CharField(max_length=128, blank=True, default="")
    address = models.CharField(max_length=255, blank=True, default="")
    version = models.CharField(max_length=64, blank=True, default="")
    capabilities = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=NodeStatus.choices, default=NodeStatus.REGISTERING)
    registered_at = models.DateTimeField(auto_now_add=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    stale_at = models.DateTimeField(null=True, blank=True)
    offline_at = models.DateTimeField(null=True, blank=True)

    objects = NodeQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        # An operator action in the console, granted to the `operators` group (console migration).
        permissions = [("deregister_node", "Can deregister nodes")]
        indexes = [
            # Read by expire_stale_nodes(): "online nodes past stale_at", "non-offline nodes past offline_at".
            models.Index(fields=["status", "stale_at"], name="node_status_stale_at"),
            models.Index(fields=["status", "offline_at"], name="node_status_offline_at"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_static(self) -> bool:
        return self.id == self.STATIC_NODE_ID

    def deadlines_from(self, heartbeat_at: datetime) -> tuple[datetime, datetime]:
        """(stale_at, offline_at) for a heartbeat received at `heartbeat_at`."""
        interval = timedelta(milliseconds=settings.ORCHD_HEARTBEAT_INTERVAL_MS)
        timeout = timedelta(milliseconds=settings.ORCHD_NODE_TIMEOUT_MS)
        return heartbeat_at + 2 * interval, heartbeat_at + timeout

    @property
    def last_heartbeat_ms(self) -> int | None:
        if self.last_heartbeat_at is None:
            return None
        return int(self.last_heartbeat_at.timestamp() * 1000)
