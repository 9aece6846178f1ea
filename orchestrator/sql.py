"""The task path's statements, written once as SQL: no ORM compilation per call.

Django's ORM builds and compiles every statement anew on each call, which
costs 0.4–0.5 ms here against 15–70 µs to run it (docs/performance.md,
"Where the time goes"). A task runs about thirty statements between its
admission and its end, so those are written out as SQL with this module's
helpers; everything else keeps the ORM.

The helpers keep the ORM's meaning: values go in through the model field's
own adaptation (`db_value`, `insert`), rows come out through the same
converters the ORM applies (`Select`), and both backends (SQLite and
PostgreSQL) run the same text but for the few spellings `greatest` and
`numeric` cover. tests/db/test_sql.py checks the helpers against the ORM
on both backends; the statements themselves are covered by the tests of the
features that run them (budgets, sessions, leases, admission).
"""

from __future__ import annotations

import re
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import (
    BigIntegerField,
    BooleanField,
    CharField,
    Field,
    IntegerField,
    Model,
    PositiveBigIntegerField,
    PositiveIntegerField,
    PositiveSmallIntegerField,
    SmallIntegerField,
    TextField,
)
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init
from django.db.transaction import TransactionManagementError

from orchestrator.db import statements

M = TypeVar("M", bound=Model)

Converter = Callable[[Any, Any, Any], Any]


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def greatest(a: str, b: str) -> str:
    """SQL for the larger of two values (SQLite's two-argument MAX is its GREATEST)."""
    return f"MAX({a}, {b})" if connection.vendor == "sqlite" else f"GREATEST({a}, {b})"


def numeric(placeholder: str = "%s") -> str:
    """A decimal parameter in arithmetic, cast as the ORM casts it on SQLite (stored as text there)."""
    return f"CAST({placeholder} AS NUMERIC)" if connection.vendor == "sqlite" else placeholder


def all_fields(model: type[Model]) -> tuple[str, ...]:
    """Every concrete field's name, for a `Select` of whole rows."""
    return tuple(field.name for field in model._meta.concrete_fields)


def concrete_fields(model: type[Model], names: Sequence[str]) -> list[Field[Any, Any]]:
    """The model's fields of these names, each one a column of its table."""
    fields = [model._meta.get_field(name) for name in names]
    for field in fields:
        if not (isinstance(field, Field) and field.column):
            raise ValueError(f"{model.__name__}.{field.name} is not a column of its table.")
    return fields  # type: ignore[return-value]


def db_value(model: type[Model], field_name: str, value: Any) -> Any:
    """`value` as the ORM would send it for this field (datetimes in UTC, JSON encoded, ...)."""
    return model._meta.get_field(field_name).get_db_prep_save(value, connections[DEFAULT_DB_ALIAS])  # type: ignore[union-attr]


def run(sql: str, params: Sequence[Any] = ()) -> Any:
    """Run one statement on the driver's own cursor; that cursor, to fetch from.

    Django's cursor costs ~100 µs a statement here before SQLite's work
    (~4 µs for a lookup by key): a wrapper object and, with
    django-prometheus's SQLite backend, a new class per cursor. The driver's
    cursor runs in the same connection and transaction; what Django's adds
    is kept: the thread and broken-transaction checks, its exception
    classes (`IntegrityError` ...), and the statement metrics. When queries
    are being recorded (DEBUG, a test's `CaptureQueriesContext`) or an
    `execute_wrapper` is installed, the statement goes through Django's
    cursor so that they see it.
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the `connection` proxy looks it up again
    if db.queries_logged or db.execute_wrappers:
        cursor = db.cursor()
        cursor.execute(sql, params)
        return cursor
    db.ensure_connection()
    db.validate_thread_sharing()
    db.validate_no_broken_transaction()
    if db.vendor != "sqlite":
        # psycopg's cursors tally their statements already (the connection's factory).
        with db.wrap_database_errors:
            return db.connection.execute(sql, params)
    started = time.perf_counter()
    try:
        with db.wrap_database_errors:
            return db.connection.execute(_qmark(sql), params)
    except Exception as exc:
        statements.failed(db.alias, db.vendor, exc)
        raise
    finally:
        statements.record(db.alias, db.vendor, time.perf_counter() - started)


def fetch(sql: str, params: Sequence[Any], *, one: bool = False) -> Any:
    """Run a query and fetch its rows (`one`: the first row or None), with Django's exceptions throughout."""
    db = connections[DEFAULT_DB_ALIAS]
    cursor = run(sql, params)
    with db.wrap_database_errors:  # rows may still be read from the database while fetching
        return cursor.fetchone() if one else cursor.fetchall()


def _qmark(sql: str) -> str:
    """The statement in SQLite's own placeholders, as Django's SQLite cursor converts it."""
    converted = _QMARK.get(sql)
    if converted is None:
        converted = _QMARK[sql] = _FORMAT.sub("?", sql).replace("%%", "%")
    return converted


_QMARK: dict[str, str] = {}
_FORMAT = re.compile(r"(?<!%)%s")


def execute(sql: str, params: Sequence[Any] = ()) -> int:
    """Run one statement; the number of rows it changed."""
    return int(run(sql, params).rowcount)


def update(model: type[Model], assignments: str, where: str, params: Sequence[Any]) -> int:
    """`UPDATE <model's table> SET <assignments> WHERE <where>`; the number of rows changed."""
    return execute(f"UPDATE {table(model)} SET {assignments} WHERE {where}", params)  # noqa: S608 - values are parameters


def count(model: type[Model], where: str, params: Sequence[Any]) -> int:
    """`SELECT COUNT(*) FROM <model's table> WHERE <where>`."""
    return int(scalar(f"SELECT COUNT(*) FROM {table(model)} WHERE {where}", params))  # noqa: S608 - values are parameters


def scalar(sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row, or None."""
    row = fetch(sql, params, one=True)
    return None if row is None else row[0]


def insert(obj: Model, *, if_absent: bool = False) -> bool:
    """INSERT a new row for `obj`: what `save(force_insert=True)` writes, for a model with its own primary key.

    `if_absent`: a row with the same key (or another unique value) is left as
    it is, without an error (`ON CONFLICT DO NOTHING`). Whether the row was inserted.
    """
    meta = obj._meta
    if meta.auto_field is not None:
        raise ValueError(f"{meta.label} has a database-generated key: save it with the ORM.")
    fields = meta.local_concrete_fields
    db = connections[DEFAULT_DB_ALIAS]
    key = (db.vendor, meta.label)
    sql = _INSERTS.get(key)
    if sql is None:
        columns = ", ".join(db.ops.quote_name(field.column) for field in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {table(type(obj))} ({columns}) VALUES ({placeholders})"  # noqa: S608 - values are parameters
        _INSERTS[key] = sql
    plan = _INSERT_PLANS.get(key)
    if plan is None:
        plan = _INSERT_PLANS[key] = [(field, field.attname, _as_is_types(field, db)) for field in fields]
    values = []
    for field, attname, as_is in plan:
        if as_is and type(value := getattr(obj, attname)) in as_is:
            values.append(value)  # what the field's own adaptation would give back
        else:
            values.append(field.get_db_prep_save(field.pre_save(obj, True), db))
    inserted = execute(sql + " ON CONFLICT DO NOTHING" if if_absent else sql, values) == 1
    if inserted:
        obj._state.adding = False
        obj._state.db = db.alias
    return inserted


_INSERTS: dict[tuple[str, str], str] = {}
_INSERT_PLANS: dict[tuple[str, str], list[tuple[Field[Any, Any], str, tuple[type, ...]]]] = {}

_INTEGER_FIELDS = (
    IntegerField,
    SmallIntegerField,
    BigIntegerField,
    PositiveIntegerField,
    PositiveSmallIntegerField,
    PositiveBigIntegerField,
)


def _as_is_types(field: Field[Any, Any], db: Any) -> tuple[type, ...]:
    """The exact types of value that this field sends to this database unchanged; () if none is known.

    `get_db_prep_save` of a text, boolean or integer field only checks a str, a
    bool or an int (and None) and gives it back; an INSERT of a task has 28 such
    fields of 40, and the call cost more than the statement. Only those exact
    classes, with the base `pre_save`, qualify; integers only where the backend
    does not wrap them (PostgreSQL does: psycopg's sized integer types).
    tests/db/test_sql.py holds the outcome to the field's own adaptation.
    """
    kind = type(field)
    if kind.pre_save is not Field.pre_save:
        return ()
    if kind in (CharField, TextField):
        return (str, type(None))
    if kind is BooleanField:
        return (bool, type(None))
    if (
        kind in _INTEGER_FIELDS
        and type(db.ops).adapt_integerfield_value is BaseDatabaseOperations.adapt_integerfield_value
    ):
        return (int, type(None))
    return ()


def insert_values(model: type[Model], field_names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """INSERT rows of plain values (already as the database takes them) into some of a model's fields."""
    if not rows:
        return
    fields = concrete_fields(model, field_names)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    values = ", ".join([row] * len(rows))
    params = [value for one in rows for value in one]
    execute(f"INSERT INTO {table(model)} ({columns}) VALUES {values}", params)  # noqa: S608 - values are parameters


# A field's class attribute that reads the instance's own value, and (a foreign key's, on a
# fresh instance with nothing cached) sets it as is: setting `__dict__` does the same.
_PLAIN_ATTRIBUTES = (DeferredAttribute, ForeignKeyDeferredAttribute)


class Select(Generic[M]):
    """`SELECT <fields> FROM <model's table> WHERE <where>`; rows come back as model instances.

    `where` is SQL with `%s` placeholders, naming columns as they are in the
    table. Fields not selected are deferred, as with `.only()`: reading one
    of them later costs a query, so select what the caller reads.
    `for_update` locks the rows on PostgreSQL (SQLite's writers are
    serialized anyway).
    """

    def __init__(
        self, model: type[M], fields: Sequence[str], where: str, *, limit: int | None = 1, for_update: bool = False
    ) -> None:
        self.model = model
        # In the model's order: `from_db` pairs a partial row with the fields that way.
        order = {field.name: index for index, field in enumerate(model._meta.concrete_fields)}
        self.fields = sorted(concrete_fields(model, fields), key=lambda field: order[field.name])
        self.attnames = [field.attname for field in self.fields]
        # Rows become instances by setting their attributes directly (`_instances`) when the model
        # builds them as Django's own `from_db` and `__init__` do, and each attribute is a plain one.
        self._plain = (
            model.from_db.__func__ is Model.from_db.__func__  # type: ignore[attr-defined]
            and model.__init__ is Model.__init__
            and all(type(model.__dict__.get(name)) in _PLAIN_ATTRIBUTES for name in self.attnames)
        )
        self.where = where
        self.limit = limit
        self.for_update = for_update
        self._sql: dict[str, str] = {}
        # Per connection object: a backend's converters are bound to its connection (its time zone).
        self._converters: weakref.WeakKeyDictionary[Any, list[tuple[Any, list[Converter]]]] = (
            weakref.WeakKeyDictionary()
        )

    def _for_this_connection(self, db: Any) -> tuple[str, list[tuple[Any, list[Converter]]]]:
        sql = self._sql.get(db.vendor)
        if sql is None:
            name = db.ops.quote_name(self.model._meta.db_table)
            columns = ", ".join(f"{name}.{db.ops.quote_name(field.column)}" for field in self.fields)
            sql = f"SELECT {columns} FROM {name} WHERE {self.where}"  # noqa: S608 - values are parameters
            if self.limit is not None:
                sql += f" LIMIT {int(self.limit)}"
            if self.for_update and db.features.has_select_for_update:
                sql += " FOR UPDATE"
            self._sql[db.vendor] = sql
        converters = self._converters.get(db)
        if converters is None:
            converters = []
            for field in self.fields:
                column = field.get_col(self.model._meta.db_table)
                found = db.ops.get_db_converters(column) + column.get_db_converters(db)
                converters.append((column, found))
            self._converters[db] = converters
        return sql, converters

    def all(self, *params: Any) -> list[M]:
        db = connections[DEFAULT_DB_ALIAS]
        if self.for_update and not db.in_atomic_block:
            # As the ORM's select_for_update(): a lock outside a transaction would be released at once.
            raise TransactionManagementError("Select(for_update=True) must run inside a transaction.")
        sql, converters = self._for_this_connection(db)
        return self._instances(db, converters, fetch(sql, params))

    def first(self, *params: Any) -> M | None:
        found = self.all(*params)
        return found[0] if found else None

    def returning(self, statement: str, params: Sequence[Any]) -> list[M]:
        """The rows `statement` (an INSERT or UPDATE of the model's table) writes, with these fields.

        Appends `RETURNING` (PostgreSQL; SQLite from 3.35, where
        `connection.features.can_return_columns_from_insert`).
        """
        db = connections[DEFAULT_DB_ALIAS]
        _, converters = self._for_this_connection(db)
        columns = ", ".join(db.ops.quote_name(field.column) for field in self.fields)
        return self._instances(db, converters, fetch(f"{statement} RETURNING {columns}", params))

    def _instances(self, db: Any, converters: list[tuple[Any, list[Converter]]], rows: list[Any]) -> list[M]:
        found = []
        model, attnames = self.model, self.attnames
        plain = self._plain and not (pre_init.has_listeners(model) or post_init.has_listeners(model))
        for row in rows:
            values = list(row)
            for index, (column, functions) in enumerate(converters):
                for function in functions:
                    values[index] = function(values[index], column, db)
            if plain:
                # What `from_db` builds, without `Model.__init__`'s walk over every field.
                instance = model.__new__(model)
                instance._state = ModelState()
                instance._state.adding = False
                instance._state.db = db.alias
                instance.__dict__.update(zip(attnames, values, strict=True))
            else:
                instance = model.from_db(db.alias, attnames, values)
            found.append(instance)
        return found
