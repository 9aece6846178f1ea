"""The backend follows REDIS_URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.events import get_event_log, reset_event_log_for_tests
from orchestrator.events.memory import InProcessEventLog
from orchestrator.events.redis import RedisEventLog


@pytest.fixture(autouse=True)
def _fresh_event_log() -> Iterator[None]:
    reset_event_log_for_tests()
    yield
    reset_event_log_for_tests()


def test_it_keeps_one_in_process_log_without_redis(settings: Any) -> None:
    settings.REDIS_URL = None

    log = get_event_log()

    assert isinstance(log, InProcessEventLog)
    assert get_event_log() is log


def test_it_uses_redis_streams_with_redis(settings: Any) -> None:
    settings.REDIS_URL = "redis://redis.example:6379/2"
    settings.ORCHD_REDIS_PREFIX = "acme"

    log = get_event_log()

    assert isinstance(log, RedisEventLog)
    assert (log.url, log.prefix) == ("redis://redis.example:6379/2", "acme")
    assert log.keys("t_1") == ("acme:ev:{t_1}", "acme:ev:{t_1}:meta")
    assert get_event_log() is log


def test_reset_forgets_the_frames(settings: Any) -> None:
    settings.REDIS_URL = None
    before = get_event_log()

    reset_event_log_for_tests()

    assert get_event_log() is not before
