"""The garbage collector in the long-running processes: the start-up heap frozen, pauses measured.

CPython's full collection (generation 2) walks every object the collector
tracks. In a web process those are mostly what Django, DRF, Channels, Celery
and the rest built at start-up (modules, classes, URL patterns, settings),
none of it ever garbage, and each full pass over them held the GIL, and so
the event loop, for 55–80 ms here: under an open loop of 500 admissions a
second, one such pause in a 6-second round took admission's p99 from 7 ms
to 67–84 ms (docs/performance.md, step 20).

`freeze_startup_heap()` collects once and then moves everything alive into
the collector's permanent generation (`gc.freeze()`), which later passes
skip: a full pass then walks only what was made since (5–9 ms here). What
is frozen is never collected, but it is what a process builds to start and
keeps until it exits.

Every pass of generations 1 and 2 is timed (`gc.callbacks`) into
`orchd_gc_pause_seconds`. The callback only appends to a queue in memory,
written out where the statement metrics are (the end of every request,
before `/metrics` is read, at exit): a collection can start inside any
allocation, a metric's own locked write included.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import time
from collections import defaultdict, deque
from typing import Any

from orchestrator import metrics
from orchestrator.db.statements import drain, observe_all

logger = logging.getLogger("orchestrator.heap")

# Generation-0 passes run hundreds of times a second and take microseconds: not observed.
OBSERVED_GENERATIONS = (1, 2)

# Bounded, should nothing write it out for a long while (a process serving no requests).
_pauses: deque[tuple[int, float]] = deque(maxlen=10_000)
_started = [0.0]


def freeze_startup_heap() -> int:
    """Collect what start-up left, then keep the rest out of every later pass; how many objects that is."""
    collected = gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("gc.heap_frozen", extra={"objects": frozen, "collected": collected})
    return frozen


def _timed(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    elif info["generation"] in OBSERVED_GENERATIONS:
        _pauses.append((info["generation"], time.perf_counter() - _started[0]))


def watch_pauses() -> None:
    """Time this process's collections from now on (once per process, however often called)."""
    if _timed not in gc.callbacks:
        gc.callbacks.append(_timed)


def flush(*_: Any, **__: Any) -> None:
    """Write out the pauses timed so far (any thread). Takes a signal's arguments."""
    by_generation: dict[int, list[float]] = defaultdict(list)
    for generation, seconds in drain(_pauses):
        by_generation[generation].append(seconds)
    for generation, pauses in by_generation.items():
        observe_all(metrics.orchd_gc_pause_seconds.labels(generation=str(generation)), pauses)


atexit.register(flush)
os.register_at_fork(after_in_child=_pauses.clear)
