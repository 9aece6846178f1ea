"""System checks for setting combinations that cannot work together."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register


@register()
def check_node_liveness(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """A node must be allowed to miss two heartbeats before it is declared offline."""
    interval = settings.ORCHD_HEARTBEAT_INTERVAL_MS
    timeout = settings.ORCHD_NODE_TIMEOUT_MS
    if timeout <= 2 * interval:
        return [
            Error(
                f"ORCHD_NODE_TIMEOUT_MS ({timeout}) must be more than twice ORCHD_HEARTBEAT_INTERVAL_MS ({interval}).",
                hint="A node is stale after 2 missed heartbeats and offline after the timeout.",
                id="orchd.E001",
            )
        ]
    return []


@register()
def check_metrics_mode(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Multiprocess metrics only work if the folder was set before prometheus_client loaded."""
    if not settings.ORCHD_METRICS_DIR:
        return []
    from prometheus_client import values

    if values.ValueClass.__name__ == "MutexValue":
        return [
            Error(
                "ORCHD_METRICS_DIR is set but prometheus_client was imported before settings loaded.",
                id="orchd.E002",
            )
        ]
    return []


@register()
def check_database_pool(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    return pool_problems(settings.DATABASES["default"])


def pool_problems(database: dict[str, Any]) -> list[CheckMessage]:
    """Django's connection pool does not mix with persistent connections."""
    options: dict[str, Any] = database.get("OPTIONS") or {}
    if options.get("pool") and database.get("CONN_MAX_AGE") != 0:
        return [
            Error(
                "ORCHD_DB_POOL_SIZE is set together with a non-zero ORCHD_DB_CONN_MAX_AGE.",
                hint="The pool keeps the connections: leave ORCHD_DB_CONN_MAX_AGE unset (0 on PostgreSQL).",
                id="orchd.E003",
            )
        ]
    return []


@register(deploy=True)
def check_bind_address(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    from orchestrator.auth.services import is_loopback

    if not is_loopback(settings.ORCHD_HOST) and not settings.ALLOWED_HOSTS:
        return [Warning("ORCHD_HOST is not loopback and ORCHD_ALLOWED_HOSTS is empty.", id="orchd.W001")]
    return []
