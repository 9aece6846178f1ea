"""The tally of queued tasks (orchestrator/tasks/tally.py): in step with the task table, however it changes.

SQLite keeps counts; PostgreSQL keeps counts plus deltas, folded into them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from orchestrator.sql import execute
from orchestrator.tasks import tally
from orchestrator.tasks.models import Task, TaskState
from orchestrator.tasks.queue import queue_counts
from tests.tasks.conftest import queued_task

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor not in ("sqlite", "postgresql"), reason="the tally is SQLite's and PostgreSQL's"
    ),
]

T0 = timezone.now().replace(microsecond=0)
POSTGRES = connection.vendor == "postgresql"
postgres_only = pytest.mark.skipif(not POSTGRES, reason="PostgreSQL's deltas")


def tallied() -> dict[tuple[str, str, int], int]:
    """The tally's counts by key (on PostgreSQL, with the deltas not folded yet)."""
    rows = f"SELECT model_ref, engine, priority_rank, queued AS n FROM {tally.TABLE}"  # noqa: S608
    if POSTGRES:
        rows += f" UNION ALL SELECT model_ref, engine, priority_rank, delta FROM {tally.DELTAS}"  # noqa: S608
    summed = f"SELECT model_ref, engine, priority_rank, SUM(n) FROM ({rows}) AS r GROUP BY 1, 2, 3 HAVING SUM(n) != 0"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(summed)
        return {(model, engine, rank): int(queued) for model, engine, rank, queued in cursor.fetchall()}


def deltas() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {tally.DELTAS}")  # noqa: S608
        return int(cursor.fetchone()[0])


def counted() -> dict[tuple[str, str, int], int]:
    counts: dict[tuple[str, str, int], int] = {}
    for task in Task.objects.filter(state=TaskState.QUEUED):
        key = (task.model_ref, task.engine, task.priority_rank)
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_the_migrations_leave_the_triggers_in_place():
    # Django rebuilds an SQLite table for some column changes, dropping its triggers: a migration
    # that rebuilds tasks_task must install the tally again.
    with connection.cursor() as cursor:
        if POSTGRES:
            cursor.execute("SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal")
        else:
            cursor.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
        triggers = dict(cursor.fetchall())
    names = tally.PG_TRIGGERS if POSTGRES else tally.TRIGGERS
    assert {name: triggers.get(name) for name in names} == dict.fromkeys(names, "tasks_task")


def test_every_kind_of_change_keeps_the_tally_in_step():
    queued_task("a", T0, model_ref="m1", priority_rank=0).save()
    queued_task("b", T0, model_ref="m1", priority_rank=0).save()
    Task.objects.bulk_create(
        [
            queued_task("c", T0, model_ref="m1", priority_rank=1),
            queued_task("d", T0, model_ref="m2", priority_rank=1),
            queued_task("e", T0, model_ref="m2", priority_rank=2, state=TaskState.RUNNING),
            queued_task("f", T0, model_ref="m2", priority_rank=2),
        ]
    )
    assert (
        tallied()
        == counted()
        == {("m1", "llamacpp", 0): 2, ("m1", "llamacpp", 1): 1, ("m2", "llamacpp", 1): 1, ("m2", "llamacpp", 2): 1}
    )

    # A save writes every column, the state unchanged: counted once still (and no delta on PostgreSQL).
    tally.fold()
    task = Task.objects.get(id="a")
    task.prompt = "again"
    task.save()
    assert tallied() == counted()
    assert not POSTGRES or deltas() == 0

    # Leaving the queue, one row and many; coming back (a requeue); a running task finishing.
    Task.objects.filter(id="b").update(state=TaskState.DISPATCHED)
    Task.objects.filter(id__in=["c", "d"]).update(state=TaskState.CANCELED)
    Task.objects.filter(id="b").update(state=TaskState.QUEUED, pool_id="")
    Task.objects.filter(id="e").update(state=TaskState.COMPLETED)
    assert tallied() == counted() == {("m1", "llamacpp", 0): 2, ("m2", "llamacpp", 2): 1}
    tally.fold()
    assert tallied() == counted()

    # A queued task moved to another key, by the ORM and by raw SQL.
    Task.objects.filter(id="a").update(priority_rank=2, model_ref="m2")
    execute('UPDATE "tasks_task" SET "engine" = %s WHERE "id" = %s', ["vllm", "f"])
    assert tallied() == counted() == {("m1", "llamacpp", 0): 1, ("m2", "llamacpp", 2): 1, ("m2", "vllm", 2): 1}

    # Deletes: a queued row, a finished row, and the rest at once.
    Task.objects.filter(id="b").delete()
    Task.objects.filter(id="e").delete()
    assert tallied() == counted() == {("m2", "llamacpp", 2): 1, ("m2", "vllm", 2): 1}
    Task.objects.all().delete()
    assert tallied() == counted() == {}


def test_installing_counts_the_queue_as_it_stands():
    Task.objects.bulk_create([queued_task(f"t{i}", T0 + timedelta(seconds=i), priority_rank=i % 3) for i in range(7)])
    with connection.cursor() as cursor:
        tally.remove(cursor, connection.vendor)
    Task.objects.filter(id="t0").update(state=TaskState.RUNNING)  # unseen: no triggers now

    with connection.cursor() as cursor:
        tally.install(cursor, connection.vendor)

    assert (
        tallied() == counted() == {("tiny", "llamacpp", 0): 2, ("tiny", "llamacpp", 1): 2, ("tiny", "llamacpp", 2): 2}
    )
    counts = queue_counts("tiny", "llamacpp", 1, T0 + timedelta(minutes=1))
    assert (counts.queued, counts.ahead) == (6, 4)


@pytest.mark.skipif(POSTGRES, reason="SQLite's INSERT OR REPLACE")
def test_a_row_replaced_by_raw_sql_leaves_its_key():
    queued_task("r", T0, model_ref="m1", priority_rank=0).save()
    columns = [field.column for field in Task._meta.concrete_fields]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM tasks_task WHERE id = %s", ["r"])  # noqa: S608
        row = list(cursor.fetchone())
        row[columns.index("model_ref")] = "m2"
        placeholders = ", ".join(["%s"] * len(columns))
        cursor.execute(f"INSERT OR REPLACE INTO tasks_task ({', '.join(columns)}) VALUES ({placeholders})", row)  # noqa: S608

    assert tallied() == counted() == {("m2", "llamacpp", 0): 1}


@postgres_only
def test_a_truncate_empties_the_tally_and_the_deltas():
    Task.objects.bulk_create([queued_task(f"t{i}", T0) for i in range(3)])
    tally.fold()
    queued_task("t3", T0).save()

    execute('TRUNCATE "tasks_task" CASCADE')

    assert tallied() == counted() == {}
    assert deltas() == 0


@postgres_only
def test_folding_moves_the_deltas_and_changes_no_count():
    Task.objects.bulk_create([queued_task(f"t{i}", T0 + timedelta(seconds=i), priority_rank=i % 2) for i in range(6)])
    Task.objects.filter(id="t0").update(state=TaskState.DISPATCHED)
    before = queue_counts("tiny", "llamacpp", 1, T0 + timedelta(minutes=1))
    assert deltas() == 7

    assert tally.fold() == 2  # two keys changed
    assert deltas() == 0
    assert tallied() == counted() == {("tiny", "llamacpp", 0): 2, ("tiny", "llamacpp", 1): 3}
    assert queue_counts("tiny", "llamacpp", 1, T0 + timedelta(minutes=1)) == before
    assert (before.queued, before.ahead) == (5, 5)
    assert tally.fold() == 0  # nothing left


@postgres_only
def test_the_beat_job_folds_the_deltas(settings):
    from orchestrator.tasks.jobs import fold_queue_tally

    Task.objects.bulk_create([queued_task(f"t{i}", T0) for i in range(3)])

    assert fold_queue_tally.apply().get() == 1
    assert deltas() == 0
    assert tallied() == counted() == {("tiny", "llamacpp", 2): 3}
    assert settings.CELERY_BEAT_SCHEDULE["fold-queue-tally"] == {
        "task": "orchestrator.tasks.jobs.fold_queue_tally",
        "schedule": 5.0,
    }


def test_the_beat_job_leaves_the_counts_as_they_are():
    from orchestrator.tasks.jobs import fold_queue_tally

    queued_task("t0", T0).save()

    assert fold_queue_tally.apply().get() == (1 if POSTGRES else 0)
    assert tallied() == counted() == {("tiny", "llamacpp", 2): 1}


def test_the_count_without_a_tally_agrees_with_the_tally(monkeypatch):
    # Another database (any dj-database-url reads) has no tally: admission counts the index.
    Task.objects.bulk_create(
        [queued_task(f"t{i}", T0 + timedelta(seconds=i % 4), priority_rank=i % 3) for i in range(12)]
        + [queued_task("other", T0, model_ref="m2"), queued_task("running", T0, state=TaskState.RUNNING)]
    )
    cases = [(rank, T0 + timedelta(seconds=at)) for rank in range(3) for at in (0, 2, 10)]
    tallied = [queue_counts("tiny", "llamacpp", rank, at) for rank, at in cases]

    monkeypatch.setattr("orchestrator.tasks.queue._tallied", lambda: False)

    assert [queue_counts("tiny", "llamacpp", rank, at) for rank, at in cases] == tallied
    assert tallied[0].queued == 13
    assert [counts.ahead for counts in tallied[:3]] == [0, 2, 4]  # rank 0 (i = 0, 3, 6, 9), at 0 / 2 / 10 s
