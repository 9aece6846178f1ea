"""The collector in long-running processes: the start-up heap frozen, pauses of generations 1 and 2 timed."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from prometheus_client import REGISTRY

from orchestrator import heap
from tests.meta.test_metrics import scrape

pytestmark = pytest.mark.django_db


def _pauses(generation: int) -> float:
    return REGISTRY.get_sample_value("orchd_gc_pause_seconds_count", {"generation": str(generation)}) or 0.0


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """A heap with nothing frozen before or after the test (another test may have imported the ASGI app)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_server_entry_point_freezes_its_startup_heap_and_times_pauses(tmp_path: Path) -> None:
    # A fresh interpreter, as daphne or uvicorn import it: this test process's heap proves nothing.
    script = "import gc, orchestrator.asgi as a; print(gc.get_freeze_count(), a.heap._timed in gc.callbacks)"
    env = {**os.environ, "ORCHD_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "orchestrator.settings"}
    for name in ("DATABASE_URL", "REDIS_URL", "ORCHD_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    frozen, watched = done.stdout.split()
    assert int(frozen) > 50_000  # Django, DRF, Channels, Celery...: hundreds of thousands of objects
    assert watched == "True"


def test_freezing_collects_first_and_keeps_the_rest_out_of_later_passes(unfrozen: None) -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    garbage = weakref.ref(Cycle())  # in a cycle: only a collection frees it
    kept: list[int] = []  # alive, and tracked by the collector
    assert garbage() is not None

    frozen = heap.freeze_startup_heap()

    assert frozen == gc.get_freeze_count() > 0
    assert garbage() is None  # collected first, not frozen
    assert not any(obj is kept for obj in gc.get_objects())  # frozen: in no generation the passes walk
    gc.unfreeze()
    assert any(obj is kept for obj in gc.get_objects())


def test_the_fake_engine_freezes_its_heap_before_serving(unfrozen: None, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    async def serve(*args: Any) -> None:
        seen.append(gc.get_freeze_count())

    monkeypatch.setattr("orchestrator.management.commands.fake_engine.serve", serve)
    call_command("fake_engine", "--port", "0")

    assert len(seen) == 1
    assert seen[0] > 0


@pytest.fixture
def no_automatic_collections() -> Iterator[None]:
    """Only the test's own collections are counted."""
    gc.disable()
    yield
    gc.enable()


@pytest.mark.usefixtures("no_automatic_collections")
def test_pauses_of_generations_1_and_2_are_observed_and_0_is_not() -> None:
    heap.watch_pauses()
    heap.watch_pauses()  # once however often called
    assert gc.callbacks.count(heap._timed) == 1
    heap.flush()
    before = {generation: _pauses(generation) for generation in (0, 1, 2)}

    gc.collect(0)
    gc.collect(1)
    gc.collect(2)
    assert _pauses(1) == before[1]  # pending until written out
    heap.flush()

    assert _pauses(0) == before[0] == 0
    assert _pauses(1) == before[1] + 1
    assert _pauses(2) == before[2] + 1
    assert (REGISTRY.get_sample_value("orchd_gc_pause_seconds_sum", {"generation": "2"}) or 0) > 0


@pytest.mark.usefixtures("no_automatic_collections")
def test_pauses_are_written_out_at_the_end_of_a_request_and_scraped(api) -> None:
    heap.watch_pauses()
    heap.flush()
    before = _pauses(2)
    gc.collect(2)

    api.get("/healthz")  # request_finished writes them out
    assert _pauses(2) == before + 1

    gc.collect(2)
    families = scrape(api)  # /metrics writes out what is pending before it reads
    assert families["orchd_gc_pause_seconds"].type == "histogram"
    counts = {
        sample.labels["generation"]: sample.value
        for sample in families["orchd_gc_pause_seconds"].samples
        if sample.name == "orchd_gc_pause_seconds_count"
    }
    assert counts["2"] == before + 2
