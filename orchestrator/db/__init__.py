"""The project's database backends, and the settings of its SQLite connections.

The pragmas are here, importable without Django's settings, so that
bench/floor_app.py opens its SQLite database as orchestratord does.
"""

# WAL lets readers run beside the single writer. Recursive triggers: a row that REPLACE
# deletes fires its delete triggers (the queue's tally, tasks/tally.py).
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "recursive_triggers=ON")


def sqlite_init_command() -> str:
    """The pragmas as one `init_command` for Django's SQLite backend."""
    return " ".join(f"PRAGMA {pragma};" for pragma in SQLITE_PRAGMAS)
