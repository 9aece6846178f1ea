"""django-prometheus's statement metrics, tallied in memory and written out in batches.

The series are django-prometheus's own (`django_db_execute_total`,
`django_db_execute_many_total`, `django_db_query_duration_seconds`,
`django_db_errors_total`). In multiprocess mode every update of a series is
a locked write to a memory-mapped file; a statement made three (the count,
the histogram's bucket and its sum), ~25 µs, more than SQLite's own work to
find a row by key, and an admission then ran seventeen statements
(docs/performance.md, step 9).

Here a statement only appends its duration to a queue in memory. The queue
is written out, one update per series and bucket, by the first statement
`FLUSH_AFTER_S` after the last write-out, at the end of every request, when
a Celery job ends, before `/metrics` is read, and at exit. A web process's
dispatcher runs statements every second, so its series lag by about a
second at most; the request that reads `/metrics` sees its own process's
statements up to that moment. A failed statement is counted in
`django_db_errors_total` at once: those are rare, and wanted at once.
"""

from __future__ import annotations

import atexit
import os
import time
from bisect import bisect_left
from collections import Counter, defaultdict, deque
from typing import Any, TypeVar

from django_prometheus.db import errors_total, execute_many_total, execute_total, query_duration_seconds

FLUSH_AFTER_S = 0.1

T = TypeVar("T")

# (alias, vendor, seconds, statements, of an `executemany`)
_pending: deque[tuple[str, str, float, int, bool]] = deque()
_last_flush = [time.monotonic()]


def record(alias: str, vendor: str, seconds: float, many: int | None = None) -> None:
    """One statement, or one `executemany` of `many` statements, that took `seconds`."""
    _pending.append((alias, vendor, seconds, 1 if many is None else many, many is not None))
    if time.monotonic() - _last_flush[0] >= FLUSH_AFTER_S:
        flush()


def failed(alias: str, vendor: str, error: BaseException) -> None:
    errors_total.labels(alias=alias, vendor=vendor, type=type(error).__name__).inc()


def flush(*_: Any, **__: Any) -> None:
    """Write out what is pending (any thread; safe beside `record`). Takes a signal's arguments."""
    _last_flush[0] = time.monotonic()
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    counts: Counter[tuple[str, str]] = Counter()
    many: Counter[tuple[str, str]] = Counter()
    for alias, vendor, seconds, statements, of_many in drain(_pending):
        durations[alias, vendor].append(seconds)
        counts[alias, vendor] += statements
        if of_many:
            many[alias, vendor] += statements
    for series, values in durations.items():
        if counts[series]:
            execute_total.labels(*series).inc(counts[series])
        if many[series]:
            execute_many_total.labels(*series).inc(many[series])
        observe_all(query_duration_seconds.labels(*series), values)


def drain(queue: deque[T]) -> list[T]:
    """Take what is in the queue now, oldest first; safe beside threads appending to it."""
    taken = []
    while True:
        try:
            taken.append(queue.popleft())
        except IndexError:
            return taken


def observe_all(histogram: Any, values: list[float]) -> None:
    """As `histogram.observe(value)` for each value, with one update per bucket.

    prometheus_client's Histogram keeps a value per bucket (the one of the
    first bound at or above an observation) and their sum; its version is
    pinned, and tests/db/test_statements.py compares the outcome with
    `observe` itself.
    """
    buckets = Counter(bisect_left(histogram._upper_bounds, value) for value in values)
    histogram._sum.inc(sum(values))
    for index, observed in buckets.items():
        histogram._buckets[index].inc(observed)


def counting_cursor(cursor_class: type[Any], alias: str, vendor: str) -> type[Any]:
    """A subclass of the driver's cursor class that tallies its statements."""

    class CountingCursor(cursor_class):  # type: ignore[misc]
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super().execute(*args, **kwargs)
            except Exception as error:
                failed(alias, vendor, error)
                raise
            finally:
                record(alias, vendor, time.perf_counter() - started)

        def executemany(self, query: Any, param_list: Any, *args: Any, **kwargs: Any) -> Any:
            param_list = list(param_list)  # counted, and maybe a generator
            started = time.perf_counter()
            try:
                return super().executemany(query, param_list, *args, **kwargs)
            except Exception as error:
                failed(alias, vendor, error)
                raise
            finally:
                record(alias, vendor, time.perf_counter() - started, many=len(param_list))

    CountingCursor.__name__ = CountingCursor.__qualname__ = f"Counting{cursor_class.__name__}"
    return CountingCursor


atexit.register(flush)
# A forked child (a Celery pool process) starts with nothing pending: its parent writes its own out.
os.register_at_fork(after_in_child=_pending.clear)
