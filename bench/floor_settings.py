"""What `bench.floor` and its apps (bench/floor_app.py) both name.

A module of its own, with no effect on import: `bench.floor` must not import
bench/floor_app.py, which sets the garbage collector of the process that
imports it.
"""

# The floor apps' garbage-collector settings (`FLOOR_COLLECTOR`).
COLLECTORS = ("started", "frozen", "rare", "off")

# The bearer token the load generator sends them; the persisted apps check it.
FLOOR_TOKEN = "floor"  # noqa: S105 - a throwaway token, on loopback
