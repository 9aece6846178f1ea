"""The floor apps' garbage-collector settings (`FLOOR_COLLECTOR`, bench/floor_app.py).

A module of its own, with no effect on import: `bench.floor` names them in
its options, and must not import bench/floor_app.py, which sets the
collector of the process that imports it.
"""

COLLECTORS = ("started", "frozen", "rare", "off")
