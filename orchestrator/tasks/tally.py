"""SQLite: how many tasks are queued per (model, engine, priority), kept by triggers on the task table.

Admission counts the whole queue (against `ORCHD_ADMISSION_CAPACITY`) and the
tasks ahead of the newcomer. Counted from the `task_queue_position` index,
both cost about 0.18 µs per queued task, and the queue may be as long as the
capacity allows: 1.8 ms of an admission's CPU at 10,000 queued tasks
(`bench.inprocess --queued 10000`). From the tally they cost the same at any
depth (`queue.py` reads it).

The triggers change the tally in the statement, and so in the transaction,
that changes a task row, however it is changed: the ORM, raw SQL, the admin,
a bulk update, a delete, a fixture load, and a row that `INSERT OR REPLACE`
deletes (the connection turns `recursive_triggers` on for that). A task row counts while its state is
`queued`; a row that leaves that state, or moves to another key while in it,
is taken off its old key. Rows at zero stay (there are few keys).

Only on SQLite. On PostgreSQL every admission and every claim of every web
process would update the same tally row and hold its lock until commit;
there the counts stay on the index (see `docs/architecture.md`).

Django's SQLite schema editor rebuilds a table for some column changes (new
table, copy, drop, rename), which drops its triggers: a migration that does
that to `tasks_task` must call `install` again (tests/tasks/test_queue_tally.py
fails until it does).
"""

from __future__ import annotations

from typing import Any

TABLE = "tasks_queuetally"
TRIGGERS = ("tasks_queuetally_insert", "tasks_queuetally_update", "tasks_queuetally_delete")
_QUEUED = "'queued'"  # TaskState.QUEUED, as a literal: triggers take no parameters
_KEY = "model_ref, engine, priority_rank"


def _add(row: str) -> str:
    """Count `row` (NEW or OLD) on its key if it is queued, creating the key's tally at need."""
    values = f"{row}.model_ref, {row}.engine, {row}.priority_rank"
    return (
        f"INSERT INTO {TABLE} ({_KEY}, queued) SELECT {values}, 1 WHERE {row}.state = {_QUEUED} "
        f"ON CONFLICT ({_KEY}) DO UPDATE SET queued = queued + 1;"
    )


def _take(row: str) -> str:
    """Take `row` off its key's tally if it was queued."""
    key = f"model_ref = {row}.model_ref AND engine = {row}.engine AND priority_rank = {row}.priority_rank"
    return f"UPDATE {TABLE} SET queued = queued - 1 WHERE {row}.state = {_QUEUED} AND {key};"  # noqa: S608 - constants


STATEMENTS = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " model_ref varchar(128) NOT NULL, engine varchar(16) NOT NULL, priority_rank integer NOT NULL,"
    f" queued integer NOT NULL, PRIMARY KEY ({_KEY})) WITHOUT ROWID",
    f"CREATE TRIGGER {TRIGGERS[0]} AFTER INSERT ON tasks_task WHEN NEW.state = {_QUEUED} BEGIN {_add('NEW')} END",
    f"CREATE TRIGGER {TRIGGERS[1]} AFTER UPDATE OF state, {_KEY} ON tasks_task"
    f" WHEN OLD.state = {_QUEUED} OR NEW.state = {_QUEUED} BEGIN {_take('OLD')} {_add('NEW')} END",
    f"CREATE TRIGGER {TRIGGERS[2]} AFTER DELETE ON tasks_task WHEN OLD.state = {_QUEUED} BEGIN {_take('OLD')} END",
)


def install(cursor: Any) -> None:
    """Create the tally (if missing) and the triggers as written here, and count the queue as it stands."""
    for trigger in TRIGGERS:
        cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for statement in STATEMENTS:
        cursor.execute(statement)
    cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608 - constants
    counted = f"SELECT {_KEY}, COUNT(*) FROM tasks_task WHERE state = {_QUEUED} GROUP BY {_KEY}"  # noqa: S608
    cursor.execute(f"INSERT INTO {TABLE} ({_KEY}, queued) {counted}")


def remove(cursor: Any) -> None:
    for trigger in TRIGGERS:
        cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
