"""Server-rendered SVG charts: round axis labels, gaps for empty minutes, escaped text."""

from __future__ import annotations

import pytest

from orchestrator.console.charts import line_chart, nice_ceiling


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (0.3, 0.5), (7, 10), (10, 10), (11, 20), (420, 500)])
def test_the_axis_tops_at_a_round_number(value, ceiling):
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_missing_minutes_leave_gaps():
    svg = line_chart([1, 2, None, 3, 4], label="x", unit="", x_labels=("a", "b", "c"))

    assert svg.count("<polyline") == 2


def test_a_lone_point_is_a_dot():
    svg = line_chart([None, 5, None], label="x", unit="", x_labels=("a", "b", "c"))

    assert "<circle" in svg
    assert "<polyline" not in svg


def test_text_is_escaped():
    svg = line_chart([1], label="<b>", unit="<", x_labels=("<i>", "b", "c"))

    assert "<b>" not in svg
    assert "<i>" not in svg
    assert "&lt;b&gt;" in svg
