"""How many tasks are queued per (model, engine, priority), kept by triggers on the task table.

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

On PostgreSQL, a tally row updated by every admission and every claim of
every web process would hold its lock until each one's commit. There the
triggers insert a delta (+1, -1) per change into `tasks_queuedelta` instead,
rows that no two transactions share, and the count is the tally plus the
deltas, in one statement (one snapshot). `fold` moves the deltas into the
tally, in one statement, so that there are only as many as the last
second's changes: each web process's dispatcher folds in its sweep, one at a
time (a second folder passes). A TRUNCATE of the task table empties both.

Django's SQLite schema editor rebuilds a table for some column changes (new
table, copy, drop, rename), which drops its triggers: a migration that does
that to `tasks_task` must call `install` again (tests/tasks/test_queue_tally.py
fails until it does). PostgreSQL refuses to change the type of a column its
triggers name (`state`, `model_ref`, `engine`, `priority_rank`): such a
migration must `remove` and `install` around the change, and the tally's
own columns (`_DELTA_ROW`) must follow the task's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection, transaction

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


# PostgreSQL: the deltas, the function its triggers run, and the fold's lock.
DELTAS = "tasks_queuedelta"
PG_FUNCTION = "tasks_queuedelta_record"
PG_TRIGGERS = (
    "tasks_queuedelta_insert",
    "tasks_queuedelta_update",
    "tasks_queuedelta_delete",
    "tasks_queuedelta_truncate",
)
FOLD_LOCK_KEY = 0x6F726369  # "orci": one fold at a time (two would lock each other's deltas)
_DELTA_ROW = "model_ref varchar(128) NOT NULL, engine varchar(16) NOT NULL, priority_rank integer NOT NULL"


def _delta(row: str, delta: int) -> str:
    values = f"{row}.model_ref, {row}.engine, {row}.priority_rank, {delta}"
    return f"INSERT INTO {DELTAS} ({_KEY}, delta) VALUES ({values});"  # noqa: S608 - constants


PG_STATEMENTS = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ({_DELTA_ROW}, queued integer NOT NULL, PRIMARY KEY ({_KEY}))",
    f"CREATE TABLE IF NOT EXISTS {DELTAS} (id bigserial PRIMARY KEY, {_DELTA_ROW}, delta integer NOT NULL)",
    f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"  # noqa: S608
    f" IF TG_OP = 'TRUNCATE' THEN DELETE FROM {DELTAS}; DELETE FROM {TABLE}; RETURN NULL; END IF;"
    f" IF TG_OP <> 'INSERT' AND OLD.state = {_QUEUED} THEN {_delta('OLD', -1)} END IF;"
    f" IF TG_OP <> 'DELETE' AND NEW.state = {_QUEUED} THEN {_delta('NEW', 1)} END IF;"
    " RETURN NULL; END $$",
    f"CREATE TRIGGER {PG_TRIGGERS[0]} AFTER INSERT ON tasks_task FOR EACH ROW"
    f" WHEN (NEW.state = {_QUEUED}) EXECUTE FUNCTION {PG_FUNCTION}()",
    # A row that stays queued under the same key (a save() writes every column) adds nothing.
    f"CREATE TRIGGER {PG_TRIGGERS[1]} AFTER UPDATE OF state, {_KEY} ON tasks_task FOR EACH ROW"
    f" WHEN ((OLD.state = {_QUEUED} OR NEW.state = {_QUEUED})"
    f" AND (OLD.state, OLD.model_ref, OLD.engine, OLD.priority_rank)"
    f" IS DISTINCT FROM (NEW.state, NEW.model_ref, NEW.engine, NEW.priority_rank))"
    f" EXECUTE FUNCTION {PG_FUNCTION}()",
    f"CREATE TRIGGER {PG_TRIGGERS[2]} AFTER DELETE ON tasks_task FOR EACH ROW"
    f" WHEN (OLD.state = {_QUEUED}) EXECUTE FUNCTION {PG_FUNCTION}()",
    f"CREATE TRIGGER {PG_TRIGGERS[3]} AFTER TRUNCATE ON tasks_task FOR EACH STATEMENT EXECUTE FUNCTION {PG_FUNCTION}()",
)
# The deltas into the tally, in one statement: readers see them on one side or the other.
_FOLD = (
    f"WITH gone AS (DELETE FROM {DELTAS} RETURNING {_KEY}, delta)"  # noqa: S608 - constants
    f" INSERT INTO {TABLE} AS tally ({_KEY}, queued) SELECT {_KEY}, SUM(delta) FROM gone GROUP BY {_KEY}"
    f" ON CONFLICT ({_KEY}) DO UPDATE SET queued = tally.queued + EXCLUDED.queued"
)


def queued_sql(where: str = "", params: Sequence[Any] = ()) -> tuple[str, list[Any]]:
    """SQL for the number of queued tasks of the keys `where` selects (over the key's columns), and its parameters."""
    condition = f" WHERE {where}" if where else ""
    counted = f"(SELECT COALESCE(SUM(queued), 0) FROM {TABLE}{condition})"  # noqa: S608 - values are parameters
    if connection.vendor != "postgresql":
        return counted, list(params)
    deltas = f"(SELECT COALESCE(SUM(delta), 0) FROM {DELTAS}{condition})"  # noqa: S608 - values are parameters
    return f"({counted} + {deltas})", [*params, *params]


def fold() -> int:
    """PostgreSQL: move the deltas into the tally; the number of keys changed (0 also if another fold runs)."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(_FOLD)
        return int(cursor.rowcount)


async def afold() -> int:
    """`fold` from async code; on SQLite, without a trip to the database thread."""
    return await sync_to_async(fold)() if connection.vendor == "postgresql" else 0


def install(cursor: Any, vendor: str = "sqlite") -> None:
    """Create the tally (if missing) and the triggers as written here, and count the queue as it stands.

    On PostgreSQL the triggers come first: creating one locks the task table
    against writes until the transaction ends, so no change falls between the
    count and the triggers.
    """
    postgres = vendor == "postgresql"
    if postgres:
        # Creating a trigger waits for every transaction on the task table, and makes every
        # query on it wait meanwhile: on a live database, better to fail (and run it again).
        cursor.execute("SET LOCAL lock_timeout = '10s'")
    _drop_triggers(cursor, postgres)
    for statement in PG_STATEMENTS if postgres else STATEMENTS:
        cursor.execute(statement)
    if postgres:
        cursor.execute(f"DELETE FROM {DELTAS}")  # noqa: S608 - constants
    cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608 - constants
    counted = f"SELECT {_KEY}, COUNT(*) FROM tasks_task WHERE state = {_QUEUED} GROUP BY {_KEY}"  # noqa: S608
    cursor.execute(f"INSERT INTO {TABLE} ({_KEY}, queued) {counted}")


def remove(cursor: Any, vendor: str = "sqlite") -> None:
    postgres = vendor == "postgresql"
    _drop_triggers(cursor, postgres)
    if postgres:
        cursor.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
        cursor.execute(f"DROP TABLE IF EXISTS {DELTAS}")
    cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")


def _drop_triggers(cursor: Any, postgres: bool) -> None:
    for trigger in PG_TRIGGERS if postgres else TRIGGERS:
        cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}" + (" ON tasks_task" if postgres else ""))
