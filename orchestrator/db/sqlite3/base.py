"""SQLite with django-prometheus's connection metrics and this project's statement tally.

django-prometheus's own SQLite backend builds a new cursor class for every
cursor and updates three series per statement (orchestrator.db.statements);
here the class is built once per connection wrapper and the statements are
tallied.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.sqlite3.base import SQLiteCursorWrapper
from django_prometheus.db.backends.sqlite3 import base

from orchestrator.db.statements import counting_cursor


class DatabaseWrapper(base.DatabaseWrapper):  # type: ignore[misc]  # django-prometheus is untyped
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cursor_class = counting_cursor(SQLiteCursorWrapper, self.alias, self.vendor)

    def create_cursor(self, name: str | None = None) -> Any:
        return self.connection.cursor(factory=self._cursor_class)
