"""The Redis event log: one stream per task, shared by every process and machine.

Keys of one task share the hash tag `{<task_id>}`, so on Redis Cluster they
live in one slot and one script may touch them all:

    <prefix>:ev:{<task_id>}        stream; frame seq N is entry id `N+1-0`,
                                   fields `e` (event) and `d` (compact JSON data)
    <prefix>:ev:{<task_id>}:meta   hash: frames (the last seq + 1), tokens,
                                   first_token_ms, terminated, watchers, last_detach_ms

Every write of a frame is one Lua script (`_ADD`): it refuses once the
terminal marker is set, so "no frame after the terminal one" holds across all
appenders in all processes, which is what makes cancel race-free.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript, Script
from redis.retry import Retry as SyncRetry
from redis.typing import EncodableT, KeyT, StreamIdT

from .base import TERMINAL_EVENTS, UNFINISHED_LOG_MAX_AGE_S, Frame, LogStats, appendable, encode_data, terminal

# KEYS: stream, meta. ARGV: event, JSON data, "1" when terminal, now (epoch ms), max age (ms).
# Returns the frame's seq, or -1 when the log is already terminated.
_ADD = """
if redis.call('HEXISTS', KEYS[2], 'terminated') == 1 then
  return -1
end
local n = redis.call('HINCRBY', KEYS[2], 'frames', 1)
if n == 1 then
  -- a stream outliving an expired meta hash must not clash with id 1-0
  redis.call('DEL', KEYS[1])
end
redis.call('XADD', KEYS[1], n .. '-0', 'e', ARGV[1], 'd', ARGV[2])
if ARGV[1] == 'token' then
  redis.call('HINCRBY', KEYS[2], 'tokens', 1)
  redis.call('HSETNX', KEYS[2], 'first_token_ms', ARGV[4])
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], 'terminated', '1')
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return n - 1
"""

# KEYS: meta. ARGV: +1 or -1, now (epoch ms) or "" on attach, max age (ms).
# A watcher may come before the first frame: the hash then gets the max age,
# but an expiry already set (the retention of a finished task) is kept.
_WATCH = """
local watchers = redis.call('HINCRBY', KEYS[1], 'watchers', ARGV[1])
if watchers < 0 then
  redis.call('HSET', KEYS[1], 'watchers', 0)
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'last_detach_ms', ARGV[2])
end
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return watchers
"""


@dataclass(frozen=True)
class _Connection:
    """A client bound to one event loop, with the scripts registered on it."""

    client: Redis
    add: AsyncScript
    watch: AsyncScript


@dataclass(frozen=True)
class _SyncConnection:
    """The client of sync code (any thread: its pool hands each call a connection of its own)."""

    client: redis.Redis
    add: Script


class RedisEventLog:
    """The `EventLog` on Redis Streams; one client per event loop of this process.

    Sync code (views, Celery jobs, the DB thread) has its own client and `*_now`
    methods, as the in-process log has: each call then waits on its own socket in
    its own thread, not for a trip through an event loop (async_to_sync) that a
    busy loop makes slow.
    """

    def __init__(self, url: str, *, prefix: str = "orchd", max_age_s: int = UNFINISHED_LOG_MAX_AGE_S) -> None:
        self.url = url
        self.prefix = prefix
        self._max_age_ms = max_age_s * 1000
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._connections: dict[asyncio.AbstractEventLoop, _Connection] = {}
        self._sync: _SyncConnection | None = None

    def keys(self, task_id: str) -> tuple[str, str]:
        """The task's stream and meta keys."""
        stream = f"{self.prefix}:ev:{{{task_id}}}"
        return stream, f"{stream}:meta"

    async def append(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        return await self._add(task_id, appendable(event), data)

    async def terminate(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        return await self._add(task_id, terminal(event), data)

    async def read(self, task_id: str, after: int, timeout_s: float) -> list[Frame]:
        client = self._connection().client
        stream, meta = self.keys(task_id)
        start: dict[KeyT, StreamIdT] = {stream: f"{max(after, -1) + 1}-0"}
        async with client.pipeline(transaction=False) as pipe:
            pipe.xread(start)
            pipe.hexists(meta, "terminated")
            entries, terminated = await pipe.execute()
        # A terminated log gets nothing new: waiting would only delay the caller.
        if entries or terminated or timeout_s <= 0:
            return _frames(entries)
        # BLOCK 0 would wait forever: the shortest real wait is 1 ms.
        return _frames(await client.xread(start, block=max(1, round(timeout_s * 1000))))

    async def stats(self, task_id: str) -> LogStats:
        # redis-py types replies as "awaitable or not" for its sync and async clients alike.
        reply = self._connection().client.hgetall(self.keys(task_id)[1])
        return _stats(await cast("Awaitable[dict[str, str]]", reply))

    async def attach(self, task_id: str) -> None:
        await self._connection().watch(keys=[self.keys(task_id)[1]], args=[1, "", self._max_age_ms])

    async def detach(self, task_id: str, now_ms: int) -> None:
        await self._connection().watch(keys=[self.keys(task_id)[1]], args=[-1, now_ms, self._max_age_ms])

    async def expire(self, task_id: str, ttl_s: int) -> None:
        async with self._connection().client.pipeline(transaction=True) as pipe:
            for key in self.keys(task_id):
                pipe.expire(key, ttl_s)
            await pipe.execute()

    async def exists(self, task_id: str) -> bool:
        return bool(await self._connection().client.exists(self.keys(task_id)[0]))

    async def aclose(self) -> None:
        """Close the current event loop's client (others are left alone)."""
        with self._lock:
            connection = self._connections.pop(asyncio.get_running_loop(), None)
        if connection is not None:
            await connection.client.aclose()

    # The same operations for sync code, on its own client.

    def append_now(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        return self._add_now(task_id, appendable(event), data)

    def terminate_now(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        return self._add_now(task_id, terminal(event), data)

    def stats_now(self, task_id: str) -> LogStats:
        reply = self._sync_connection().client.hgetall(self.keys(task_id)[1])
        return _stats(cast("dict[str, str]", reply))

    def expire_now(self, task_id: str, ttl_s: int) -> None:
        with self._sync_connection().client.pipeline(transaction=True) as pipe:
            for key in self.keys(task_id):
                pipe.expire(key, ttl_s)
            pipe.execute()

    def close_now(self) -> None:
        """Close the sync client (the event loops' clients are left alone), once nothing uses it."""
        with self._lock:
            connection, self._sync = self._sync, None
        if connection is not None:
            connection.client.close()

    async def _add(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        seq = int(await self._connection().add(keys=self.keys(task_id), args=self._add_args(event, data)))
        return None if seq < 0 else seq

    def _add_now(self, task_id: str, event: str, data: dict[str, Any]) -> int | None:
        seq = int(self._sync_connection().add(keys=self.keys(task_id), args=self._add_args(event, data)))
        return None if seq < 0 else seq

    def _add_args(self, event: str, data: dict[str, Any]) -> list[EncodableT]:
        return [event, _dumps(data), int(event in TERMINAL_EVENTS), time.time_ns() // 1_000_000, self._max_age_ms]

    def _forget_parents_clients(self) -> None:
        """In a forked child (the lock held): its parent's sockets are not its own to talk over."""
        if self._pid != os.getpid():
            self._pid, self._connections, self._sync = os.getpid(), {}, None

    def _sync_connection(self) -> _SyncConnection:
        with self._lock:
            self._forget_parents_clients()
            if self._sync is None:
                client = redis.Redis.from_url(self.url, **_CLIENT_OPTIONS, retry=SyncRetry(NoBackoff(), 0))
                self._sync = _SyncConnection(client, client.register_script(_ADD))
            return self._sync

    def _connection(self) -> _Connection:
        """This event loop's client: a client's sockets belong to the loop that opened them."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._forget_parents_clients()
            connection = self._connections.get(loop)
            if connection is None:
                # Loops of finished async_to_sync calls and tests are closed: forget their clients.
                self._connections = {lp: c for lp, c in self._connections.items() if not lp.is_closed()}
                connection = self._connections[loop] = self._connect()
            return connection

    def _connect(self) -> _Connection:
        client = Redis.from_url(self.url, **_CLIENT_OPTIONS, retry=Retry(NoBackoff(), 0))
        return _Connection(client, client.register_script(_ADD), client.register_script(_WATCH))


# Both clients' options, and no retries: a retried script whose reply was lost would append a
# frame twice. Readers lose nothing by failing: an SSE client resumes from its Last-Event-ID.
_CLIENT_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    # A pooled connection idle this long is checked before use (a restarted Redis).
    "health_check_interval": 30,
}


def _stats(fields: dict[str, str]) -> LogStats:
    """A log's stats from its meta hash."""
    return LogStats(
        frames=int(fields.get("frames", 0)),
        tokens=int(fields.get("tokens", 0)),
        first_token_ms=_optional_int(fields.get("first_token_ms")),
        terminated="terminated" in fields,
        watchers=int(fields.get("watchers", 0)),
        last_detach_ms=_optional_int(fields.get("last_detach_ms")),
    )


def _dumps(data: dict[str, Any]) -> str:
    return encode_data(data)


def _frames(reply: Any) -> list[Frame]:
    """Frames from an XREAD reply on one stream: [[key, [[id, {e, d}], ...]]]."""
    if not reply:
        return []
    ((_key, entries),) = reply
    return [Frame.encoded(_seq(entry_id), fields["e"], fields["d"]) for entry_id, fields in entries]


def _seq(entry_id: str) -> int:
    """Stream entry `N+1-0` holds frame N (stream ids start at 1, seqs at 0)."""
    return int(entry_id.partition("-")[0]) - 1


def _optional_int(value: str | None) -> int | None:
    return None if value is None else int(value)
