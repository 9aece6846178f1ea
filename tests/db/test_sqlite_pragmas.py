"""orchestrator.db's SQLite pragmas: what every connection of the embedded mode runs with."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's connection settings"),
]


def _pragma(name: str) -> object:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


def test_connections_run_in_wal_with_recursive_triggers() -> None:
    assert _pragma("journal_mode") == "wal"  # readers beside the single writer
    assert _pragma("synchronous") == 1  # NORMAL: no fsync per commit in WAL
    assert _pragma("recursive_triggers") == 1  # REPLACE's deletes keep the queue's tally (tasks/tally.py)
