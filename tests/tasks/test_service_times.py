"""Observed service times: the first task sets the averages, each later one moves them by EWMA_ALPHA."""

from __future__ import annotations

import pytest

from orchestrator.tasks.models import ServiceTime
from orchestrator.tasks.queue import EWMA_ALPHA, record_service_time

pytestmark = pytest.mark.django_db


def test_the_first_task_sets_the_averages():
    record_service_time("m", "p1", first_token_ms=100.0, decode_ms=400.0, tokens=4)

    row = ServiceTime.objects.get(model_ref="m", pool_id="p1")
    assert (row.first_token_ms, row.decode_ms_per_token, row.total_ms, row.samples) == (100.0, 100.0, 500.0, 1)


def test_each_later_task_moves_them_by_the_weight_of_the_newest():
    record_service_time("m", "p1", first_token_ms=100.0, decode_ms=400.0, tokens=4)

    record_service_time("m", "p1", first_token_ms=200.0, decode_ms=0.0, tokens=0)

    row = ServiceTime.objects.get(model_ref="m", pool_id="p1")
    assert row.first_token_ms == pytest.approx(100.0 + EWMA_ALPHA * 100.0)
    assert row.decode_ms_per_token == pytest.approx(100.0 - EWMA_ALPHA * 100.0)
    assert row.total_ms == pytest.approx(500.0 - EWMA_ALPHA * 300.0)
    assert row.samples == 2


def test_pools_keep_their_own_averages():
    record_service_time("m", "p1", first_token_ms=100.0, decode_ms=0.0, tokens=0)
    record_service_time("m", "p2", first_token_ms=300.0, decode_ms=0.0, tokens=0)

    assert ServiceTime.objects.get(pool_id="p1").first_token_ms == 100.0
    assert ServiceTime.objects.get(pool_id="p2").first_token_ms == 300.0
