"""Small display helpers shared by the dashboard and the admin pages: ages, badges, pool progress."""

from __future__ import annotations

from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from nodes.models import NodeStatus
from pools.models import Pool, ReloadState

# Tones map to console.css classes (and work in the admin's dark theme).
OK, WARN, BAD, INFO, MUTED = "ok", "warn", "bad", "info", "muted"
NODE_TONES = {NodeStatus.ONLINE: OK, NodeStatus.STALE: WARN, NodeStatus.OFFLINE: BAD, NodeStatus.REGISTERING: INFO}


def age(moment: datetime | None, now: datetime) -> str:
    """'4 s ago', '3 min ago', '2 h ago', 'never'."""
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def badge(text: str, tone: str) -> SafeString:
    return format_html('<span class="console-badge console-{}">{}</span>', tone, text)


def node_badge(status: str) -> SafeString:
    return badge(status, NODE_TONES.get(NodeStatus(status), MUTED))


def pool_badge(pool: Pool) -> SafeString:
    """What an operator looks for: ready or not, draining or drained, and the node's trouble if any."""
    badges = []
    if pool.node.status != NodeStatus.ONLINE:
        badges.append(node_badge(pool.node.status))
    if pool.is_draining:
        badges.append(badge("drained", MUTED) if pool.drained_at else badge("draining", WARN))
    elif not badges:
        badges.append(badge("ready", OK) if pool.ready else badge("not ready", BAD))
    return format_html_join(" ", "{}", ((item,) for item in badges))


def slot_bar(used: int, total: int) -> SafeString:
    percent = min(100, round(100 * used / total)) if total else 0
    tone = BAD if percent >= 100 else WARN if percent >= 75 else OK
    return format_html(
        '<span class="console-bar" title="{} of {} slots in use"><span class="console-{}" style="width:{}%"></span>'
        "</span> {}/{}",
        used,
        total,
        tone,
        percent,
        used,
        total,
    )


def pool_progress(pool: Pool, now: datetime) -> str:
    """Where the pool's drain, reload and purge stand, in words ('' when nothing is going on)."""
    parts = []
    if pool.desired_draining:
        parts.append(_drain_progress(pool, now))
    if pool.reload_state == ReloadState.PENDING:
        parts.append(f"reload to {pool.reload_model_ref} pending since {age(pool.reload_requested_at, now)}")
    elif pool.reload_state == ReloadState.FAILED:
        parts.append(f"reload to {pool.reload_model_ref} failed: {pool.reload_error or 'no reason given'}")
    elif pool.reload_state == ReloadState.SUCCEEDED:
        parts.append(f"reloaded to {pool.reload_model_ref}")
    if pool.purge_request:
        parts.append("purge pending")
    return " · ".join(parts)


def _drain_progress(pool: Pool, now: datetime) -> str:
    if pool.drained_at:
        return f"drained {age(pool.drained_at, now)}"
    text = f"draining: {pool.active_leases} task(s) still running"
    if pool.drain_deadline_at:
        left = int((pool.drain_deadline_at - now).total_seconds())
        text += f", deadline in {left} s" if left > 0 else ", deadline passed"
    return text
