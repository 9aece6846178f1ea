"""The task event log: append-only frames per task, read by any number of SSE clients."""

from __future__ import annotations

import threading
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings

from .base import EventLog, LogStats
from .memory import InProcessEventLog
from .redis import RedisEventLog

_lock = threading.Lock()
_in_process: InProcessEventLog | None = None
_on_redis: dict[tuple[str, str], RedisEventLog] = {}


def get_event_log() -> EventLog:
    """Redis Streams when REDIS_URL is set (shared by all processes), else this process's store."""
    global _in_process
    url: str | None = settings.REDIS_URL
    with _lock:
        if url:
            key = (url, settings.ORCHD_REDIS_PREFIX)
            if key not in _on_redis:
                _on_redis[key] = RedisEventLog(url, prefix=key[1])
            return _on_redis[key]
        if _in_process is None:
            _in_process = InProcessEventLog()
        return _in_process


def reset_event_log_for_tests() -> None:
    """Forget every log, so the next get_event_log() starts empty (Redis keys are left alone)."""
    global _in_process
    with _lock:
        _in_process = None
        for log in _on_redis.values():
            log.close_now()
        _on_redis.clear()


class SyncEventLog:
    """The event log for sync code (views, Celery jobs, the dispatcher's DB thread).

    Both logs have their operations for sync code (`*_now`): the in-process
    log's never wait, and Redis' wait on a client of their own, in the calling
    thread. async_to_sync would cost a round trip through the event loop,
    which a busy loop makes slow.
    """

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._now: InProcessEventLog | RedisEventLog | None = (
            log if isinstance(log, InProcessEventLog | RedisEventLog) else None
        )

    def append(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        if self._now is not None:
            return self._now.append_now(task_id, event, data)
        return async_to_sync(self.log.append)(task_id, event, data)

    def terminate(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        if self._now is not None:
            return self._now.terminate_now(task_id, event, data)
        return async_to_sync(self.log.terminate)(task_id, event, data)

    def stats(self, task_id: str) -> LogStats:
        if self._now is not None:
            return self._now.stats_now(task_id)
        return async_to_sync(self.log.stats)(task_id)

    def expire(self, task_id: str, ttl_s: int) -> None:
        if self._now is not None:
            self._now.expire_now(task_id, ttl_s)
        else:
            async_to_sync(self.log.expire)(task_id, ttl_s)


def get_sync_event_log() -> SyncEventLog:
    return SyncEventLog(get_event_log())
