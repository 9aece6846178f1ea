"""PostgreSQL with django-prometheus's statement metrics, safe with psycopg's connection pool.

django-prometheus wraps a connection's cursor factory in a counting class
each time Django gets the connection. With `ORCHD_DB_POOL_SIZE`, Django
gets the same pooled connection again and again, and the wrappers nest:
every statement was counted once per checkout so far, and after ~1,000
checkouts a statement would fail with RecursionError. Here the factory is
wrapped once per connection, and its statements are tallied
(orchestrator.db.statements).
"""

from __future__ import annotations

from typing import Any

from django_prometheus.db.backends.postgresql import base

from orchestrator.db.statements import counting_cursor

COUNTING = "orchd_counting"


class DatabaseWrapper(base.DatabaseWrapper):  # type: ignore[misc]  # django-prometheus is untyped
    def get_new_connection(self, *args: Any, **kwargs: Any) -> Any:
        # Past django-prometheus's own wrapping, to its connection counting and Django's connect.
        connection = super(base.DatabaseWrapper, self).get_new_connection(*args, **kwargs)
        count_statements(connection, self.alias, self.vendor)
        return connection


def count_statements(connection: Any, alias: str, vendor: str) -> None:
    """Make the connection's cursors count their statements, unless they already do."""
    if getattr(connection.cursor_factory, COUNTING, False):
        return
    factory = counting_cursor(connection.cursor_factory, alias, vendor)
    setattr(factory, COUNTING, True)
    connection.cursor_factory = factory
