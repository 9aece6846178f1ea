"""`redis_url`: the Redis the Redis cases run against.

REDIS_URL when set (and then it must answer), else the local Redis on db 13
when one answers; the Redis cases are skipped only when none does.
"""

from __future__ import annotations

import os

import pytest
import redis

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/13"


def _ping(url: str) -> str:
    """Why the Redis at `url` cannot be used; "" when it answers."""
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"no Redis answers at {url} ({error})"
    finally:
        client.close()
    return ""


@pytest.fixture(scope="session")
def redis_url() -> str:
    explicit = os.environ.get("REDIS_URL")
    if explicit:
        # Configured, so the Redis cases must run: a dead server fails them instead of skipping.
        if problem := _ping(explicit):
            pytest.fail(f"REDIS_URL is set but {problem}")
        return explicit
    if problem := _ping(LOCAL_REDIS_URL):
        pytest.skip(f"REDIS_URL is unset and {problem}")
    return LOCAL_REDIS_URL
