"""orchestrator.sql: the hand-written statements read and write exactly what the ORM does (both backends)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import Model
from django.db.models.signals import ModelSignal, post_init, pre_init
from django.db.transaction import TransactionManagementError
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_prometheus.db import execute_total

from nodes.models import Node
from orchestrator import sql
from orchestrator.artifacts.models import Artifact, ArtifactTag
from orchestrator.db import statements
from orchestrator.sessions.models import Session
from orchestrator.sql import Select, all_fields, count, db_value, greatest, insert, insert_values, numeric, update
from orchestrator.tasks.models import Task, TaskState

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=123456)


def task(task_id: str, **fields: object) -> Task:
    values: dict[str, object] = {
        "id": task_id,
        "session_id": "s-1",
        "workload": "completion",
        "model_ref": "m",
        "engine": "llamacpp",
        "ctx": 512,
        "priority": "interactive",
        "priority_rank": 0,
        "max_tokens": 16,
        "deadline_ms": 1000,
        "deadline_at": NOW + timedelta(seconds=1),
        "prompt": "héllo",
        "inputs": ["a", "b"],
        "options": {"seed": 7, "placement": {"mode": "auto"}},
        "request_digest": "d" * 64,
        "token_id": 3,
        "admission_answer": {"queue_position": 0, "nested": {"x": [1, None]}},
        "created_at": NOW,
        "reserved_cost": Decimal("0.001600"),
        "error": None,
    }
    values.update(fields)
    return Task(**values)


def raw_row(model: type[Model], pk: str) -> dict[str, object]:
    """The row as the database holds it, every column as text (SQLite compares and sorts that), without the key."""
    columns = [field.column for field in model._meta.concrete_fields if field.column != "id"]
    as_text = ", ".join(f"CAST({connection.ops.quote_name(column)} AS TEXT)" for column in columns)
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(model._meta.db_table)
        cursor.execute(f"SELECT {as_text} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - a test's own SQL
        values = cursor.fetchone()
    return dict(zip(columns, values, strict=True))


@pytest.mark.parametrize("at", [NOW, NOW.replace(microsecond=0)], ids=["microseconds", "whole-second"])
def test_insert_writes_the_same_row_as_the_orm(at):
    # given the same task saved by the ORM and inserted by the helper
    task("t-orm", created_at=at, dispatched_at=at).save(force_insert=True)
    inserted = task("t-sql", created_at=at, dispatched_at=at)
    insert(inserted)

    # then the stored rows are identical, down to the datetime text SQLite compares and sorts
    assert raw_row(Task, "t-sql") == raw_row(Task, "t-orm")
    assert raw_row(Task, "t-sql")["created_at"] is not None
    # and the instance is marked as saved, like after save()
    assert inserted._state.adding is False
    assert model_to_dict(Task.objects.get(id="t-sql"), exclude=["id"]) == model_to_dict(
        Task.objects.get(id="t-orm"), exclude=["id"]
    )


def test_select_converts_values_as_the_orm_does():
    # given a row with datetimes, decimals, JSON, booleans and NULLs
    insert(task("t-1", error={"code": "X"}, budget_settled=True, tokens_in=None))

    found = Select(Task, all_fields(Task), '"id" = %s').first("t-1")

    expected = Task.objects.get(id="t-1")
    assert found is not None
    for field in Task._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert found.created_at == NOW
    assert found.created_at.tzinfo is not None
    assert found.reserved_cost == Decimal("0.001600")
    assert found.admission_answer["nested"] == {"x": [1, None]}
    assert found.budget_settled is True


def test_returning_gives_the_written_rows_converted_as_the_orm_reads_them():
    insert(task("t-1"))
    insert(task("t-2"))
    select = Select(Task, ("id", "state", "reserved_cost", "created_at"), "1 = 1")

    written = select.returning(
        f'UPDATE "tasks_task" SET "state" = %s, "reserved_cost" = {numeric()} WHERE "id" = %s',  # noqa: S608
        [TaskState.CANCELED, db_value(Task, "reserved_cost", Decimal("2.5")), "t-1"],
    )

    assert [(row.id, row.state, row.reserved_cost, row.created_at) for row in written] == [
        ("t-1", TaskState.CANCELED, Decimal("2.5"), NOW)
    ]
    assert Task.objects.get(id="t-1").state == TaskState.CANCELED
    assert select.returning('UPDATE "tasks_task" SET "state" = %s WHERE "id" = %s', ["running", "t-none"]) == []


def test_select_of_some_fields_defers_the_rest_and_keeps_them_in_order():
    insert(task("t-1"))

    # fields named out of the model's order still land on the right attributes
    found = Select(Task, ("state", "id", "created_at"), '"id" = %s').first("t-1")

    assert found is not None
    assert (found.id, found.state, found.created_at) == ("t-1", TaskState.QUEUED, NOW)
    assert "prompt" in found.get_deferred_fields()


def test_select_all_and_first_and_no_rows():
    insert(task("t-1"))
    insert(task("t-2"))
    everything = Select(Task, ("id",), "1 = 1", limit=None)
    one = Select(Task, ("id",), '"id" = %s')

    assert sorted(row.id for row in everything.all()) == ["t-1", "t-2"]
    assert one.first("t-missing") is None


def test_select_for_update_locks_only_where_the_database_can():
    locked = Select(Task, ("id",), '"id" = %s', for_update=True)

    sql, _ = locked._for_this_connection(connections[DEFAULT_DB_ALIAS])

    assert sql.endswith("FOR UPDATE") == (connection.vendor == "postgresql")


def test_update_and_count_report_rows():
    insert(task("t-1"))
    insert(task("t-2", state=TaskState.RUNNING))

    assert count(Task, '"state" = %s', [TaskState.QUEUED]) == 1
    assert update(Task, '"state" = %s', '"id" = %s AND "state" = %s', [TaskState.CANCELED, "t-1", "queued"]) == 1
    assert update(Task, '"state" = %s', '"id" = %s AND "state" = %s', [TaskState.CANCELED, "t-1", "queued"]) == 0
    assert Task.objects.get(id="t-1").state == TaskState.CANCELED


@pytest.mark.parametrize(("stored", "offered", "kept"), [(2, 1, 2), (1, 2, 2)])
def test_greatest_keeps_the_later_datetime(stored, offered, kept):
    Session.objects.create(id="s-1", created_at=NOW, expires_at=NOW + timedelta(hours=stored))

    later = db_value(Session, "expires_at", NOW + timedelta(hours=offered))
    update(Session, '"expires_at" = ' + greatest('"expires_at"', "%s"), '"id" = %s', [later, "s-1"])

    assert Session.objects.get(id="s-1").expires_at == NOW + timedelta(hours=kept)


def test_insert_values_writes_rows_and_ignores_no_rows():
    Artifact.objects.create(id="sha256:" + "a" * 64, kind="logs", size_bytes=1)

    insert_values(ArtifactTag, ("artifact", "tag"), [("sha256:" + "a" * 64, "x"), ("sha256:" + "a" * 64, "y")])
    insert_values(ArtifactTag, ("artifact", "tag"), [])

    assert sorted(ArtifactTag.objects.values_list("tag", flat=True)) == ["x", "y"]


@pytest.mark.django_db(transaction=True)
def test_a_locking_select_outside_a_transaction_is_refused():
    assert not connection.in_atomic_block

    with pytest.raises(TransactionManagementError):
        Select(Task, ("id",), '"id" = %s', for_update=True).first("t-1")


def test_a_model_with_a_generated_key_is_refused():
    with pytest.raises(ValueError, match="generated key"):
        insert(ArtifactTag(artifact_id="sha256:" + "a" * 64, tag="x"))


def test_a_name_that_is_no_column_is_refused():
    with pytest.raises(ValueError, match="not a column"):
        Select(Node, ("id", "pools"), "1 = 1")


def test_a_statement_fails_with_djangos_exception():
    insert(task("t-1"))

    with pytest.raises(IntegrityError), transaction.atomic():
        insert(task("t-1"))


def test_no_statement_runs_in_a_broken_transaction():
    insert(task("t-1"))

    with transaction.atomic():
        try:
            with transaction.atomic(savepoint=False):
                insert(task("t-1"))
        except IntegrityError:
            pass
        with pytest.raises(TransactionManagementError):
            count(Task, '"state" = %s', [TaskState.QUEUED])


def test_recorded_queries_see_the_statements():
    with CaptureQueriesContext(connection) as queries:
        insert(task("t-1"))
        assert Select(Task, ("id",), '"id" = %s').first("t-1") is not None

    assert [query["sql"].split()[0] for query in queries.captured_queries] == ["INSERT", "SELECT"]


def test_statements_are_counted_in_the_database_metrics():
    counted = execute_total.labels(DEFAULT_DB_ALIAS, connection.vendor)
    statements.flush()
    before = counted._value.get()

    insert(task("t-1"))
    count(Task, '"state" = %s', [TaskState.QUEUED])
    statements.flush()

    assert counted._value.get() == before + 2


def test_an_insert_if_absent_leaves_an_existing_row():
    assert insert(task("t-1", prompt="first"), if_absent=True)

    assert not insert(task("t-1", prompt="second"), if_absent=True)

    assert Task.objects.get(id="t-1").prompt == "first"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's pool hands a connection out again")
def test_a_connection_handed_out_again_counts_each_statement_once():
    from orchestrator.db.postgresql.base import count_statements

    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    factory = db.connection.cursor_factory
    assert getattr(factory, "orchd_counting", False), "the settings' backend wrapped it, once"
    count_statements(db.connection, db.alias, db.vendor)  # as when the pool hands it out again
    counted = execute_total.labels(DEFAULT_DB_ALIAS, connection.vendor)
    statements.flush()
    before = counted._value.get()

    count(Task, '"state" = %s', [TaskState.QUEUED])
    statements.flush()

    assert db.connection.cursor_factory is factory
    assert counted._value.get() == before + 1


def test_insert_sends_each_value_as_the_fields_own_adaptation_gives_it(monkeypatch: pytest.MonkeyPatch):
    # given values of the types a field passes through as they are, and some it converts:
    # an int in a boolean field, a bool and a str in integer fields, None, datetimes, JSON
    row = task("t-1", budget_settled=1, ctx=True, max_tokens="16", tokens_in=None, prompt="", attempts=3)
    db = connections[DEFAULT_DB_ALIAS]
    expected = [field.get_db_prep_save(field.pre_save(row, True), db) for field in Task._meta.local_concrete_fields]
    sent: list[object] = []
    real_execute = sql.execute

    def recording(statement: str, params: Sequence[object] = ()) -> int:
        sent.extend(params)
        return real_execute(statement, params)

    monkeypatch.setattr(sql, "execute", recording)

    insert(row)

    # (PostgreSQL's JSON adapter objects compare by identity: their wrapped values are compared)
    assert [getattr(value, "obj", value) for value in sent] == [getattr(value, "obj", value) for value in expected]
    assert [type(value) for value in sent] == [type(value) for value in expected]


def test_select_builds_instances_that_save_and_load_as_the_orms_do():
    insert(task("t-1"))

    select = Select(Task, ("id", "state", "prompt"), '"id" = %s')
    found = select.first("t-1")

    assert select._plain, "built without Model.__init__"
    assert found is not None
    assert (found.id, found.state, found.prompt) == ("t-1", TaskState.QUEUED, "héllo")
    assert (found._state.adding, found._state.db) == (False, DEFAULT_DB_ALIAS)
    assert found.get_deferred_fields() == Task.objects.only("id", "state", "prompt").get(id="t-1").get_deferred_fields()
    assert found.max_tokens == 16  # a deferred field, loaded on access
    found.state = TaskState.CANCELED
    found.save(update_fields=["state"])  # an UPDATE of the row read, not an INSERT
    assert Task.objects.get(id="t-1").state == TaskState.CANCELED


def test_select_reads_a_foreign_key_as_the_orm_does():
    node = Node.objects.create(id="n-1")
    from pools.models import Pool

    Pool.objects.create(id="p-1", node=node, engine="llamacpp", engine_url="http://127.0.0.1:1")

    select = Select(Pool, ("id", "node"), '"id" = %s')
    found = select.first("p-1")

    assert select._plain, "built without Model.__init__"
    assert found is not None
    assert found.node_id == "n-1"
    assert found.node == node


@pytest.mark.parametrize("signal", [pre_init, post_init], ids=["pre_init", "post_init"])
def test_select_builds_through_the_orm_when_a_model_listens_to_its_instances(signal: ModelSignal):
    insert(task("t-1"))
    seen: list[type[Model]] = []

    def on_init(sender: type[Model], **_: object) -> None:
        seen.append(sender)

    signal.connect(on_init, sender=Task)
    try:
        found = Select(Task, ("id",), '"id" = %s').first("t-1")
    finally:
        signal.disconnect(on_init, sender=Task)

    assert found is not None
    assert found.id == "t-1"
    assert seen == [Task]
