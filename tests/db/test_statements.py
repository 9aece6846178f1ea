"""orchestrator.db.statements: each statement counted, in batches, as django-prometheus counts it (both backends)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django_prometheus.db import errors_total, execute_many_total, execute_total, query_duration_seconds
from prometheus_client import CollectorRegistry, Histogram

from orchestrator.db import statements
from orchestrator.sql import count, execute
from orchestrator.tasks.models import Task, TaskState

pytestmark = pytest.mark.django_db

SERIES = (DEFAULT_DB_ALIAS, connection.vendor)


@pytest.fixture(autouse=True)
def nothing_pending(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    statements.flush()
    monkeypatch.setattr(statements, "FLUSH_AFTER_S", 3600.0)  # written out only when a test says so
    yield
    statements.flush()


def executed() -> float:
    return float(execute_total.labels(*SERIES)._value.get())


def durations() -> tuple[float, float]:
    """The duration histogram's count (its +Inf bucket) and sum."""
    histogram = query_duration_seconds.labels(*SERIES)
    return sum(bucket.get() for bucket in histogram._buckets), histogram._sum.get()


def samples(histogram: Histogram) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for m in histogram.collect() for s in m.samples if "created" not in s.name]


def test_writing_out_at_once_gives_the_histogram_that_observing_one_by_one_gives() -> None:
    values = [0.0, 0.00004, 0.0001, 0.0001, 0.003, 0.25, 0.7, 1.0, 7.5, 25.0, 1e9]
    one_by_one = Histogram("one_by_one", "", registry=CollectorRegistry(), buckets=(0.0001, 0.001, 0.5, 1.0, 10.0))
    batched = Histogram("batched", "", registry=CollectorRegistry(), buckets=(0.0001, 0.001, 0.5, 1.0, 10.0))
    for value in values:
        one_by_one.observe(value)

    statements.observe_all(batched, values)

    assert [(name.replace("one_by_one", "batched"), labels, value) for name, labels, value in samples(one_by_one)] == (
        samples(batched)
    )


def test_statements_wait_in_memory_until_written_out() -> None:
    before, (observed, total) = executed(), durations()

    count(Task, '"state" = %s', [TaskState.QUEUED])  # orchestrator.sql, on the driver's cursor
    Task.objects.filter(state=TaskState.QUEUED).exists()  # the ORM, on Django's cursor

    assert executed() == before
    statements.flush()
    assert executed() == before + 2
    assert durations()[0] == observed + 2
    assert durations()[1] > total


def test_a_statement_long_after_the_last_write_out_writes_everything_out(monkeypatch: pytest.MonkeyPatch) -> None:
    count(Task, '"state" = %s', [TaskState.QUEUED])
    before = executed()
    monkeypatch.setattr(statements, "FLUSH_AFTER_S", 0.0)

    count(Task, '"state" = %s', [TaskState.QUEUED])

    assert executed() == before + 2


def test_the_end_of_a_request_writes_everything_out() -> None:
    before = executed()
    count(Task, '"state" = %s', [TaskState.QUEUED])

    request_finished.send(sender=None)

    assert executed() == before + 1


def test_reading_the_metrics_writes_this_process_statements_out(client: Any) -> None:
    before = executed()
    count(Task, '"state" = %s', [TaskState.QUEUED])
    with statements_written_out_by_request_end_disabled():
        body = client.get("/metrics").content.decode()

    line = next(
        line
        for line in body.splitlines()
        if line.startswith(f'django_db_execute_total{{alias="{DEFAULT_DB_ALIAS}",vendor="{connection.vendor}"}}')
    )
    assert float(line.rsplit(" ", 1)[1]) >= before + 1


def test_many_statements_at_once_are_counted_each() -> None:
    before, many = executed(), execute_many_total.labels(*SERIES)._value.get()
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Task._meta.db_table} SET state = %s WHERE id = %s",  # noqa: S608 - a constant table name
            ((TaskState.QUEUED, f"t-{n}") for n in range(3)),  # type: ignore[arg-type]  # a generator: counted, and run
        )

    statements.flush()

    assert executed() == before + 3
    assert execute_many_total.labels(*SERIES)._value.get() == many + 3


def failures() -> float:
    return sum(  # type: ignore[no-any-return]
        sample.value
        for metric in errors_total.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["vendor"] == connection.vendor
    )


@pytest.mark.parametrize(
    "run", [lambda sql: connection.cursor().execute(sql), execute], ids=["django's cursor", "the driver's"]
)
def test_a_failed_statement_is_counted_at_once(run: Any) -> None:
    before = failures()

    with pytest.raises(DatabaseError), transaction.atomic():
        run("SELECT * FROM no_such_table")

    assert failures() == before + 1


def test_the_orm_cursor_class_is_built_once_per_connection() -> None:
    with connection.cursor() as first, connection.cursor() as second:
        assert type(first.cursor) is type(second.cursor)
        assert type(first.cursor).__name__.startswith("Counting")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's pool hands a connection out again")
def test_the_pool_connection_factory_tallies() -> None:
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    assert db.connection.cursor_factory.__name__.startswith("Counting")


class statements_written_out_by_request_end_disabled:
    """Only the metrics view itself may write out, to show that it does."""

    def __enter__(self) -> None:
        request_finished.disconnect(dispatch_uid="orchd-statements-flush")

    def __exit__(self, *_: object) -> None:
        request_finished.connect(statements.flush, dispatch_uid="orchd-statements-flush")
