"""Server-rendered SVG line charts: no JavaScript library, nothing fetched from elsewhere."""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 600, 170
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 22
GRID_LINES = 4


def nice_ceiling(value: float) -> float:
    """The next 1, 2, 5 × 10ⁿ at or above `value`, so axis labels are round numbers."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1.0, 2.0, 5.0, 10.0) if value <= step * magnitude)


def line_chart(values: Sequence[float | None], *, label: str, unit: str, x_labels: tuple[str, str, str]) -> SafeString:
    """One series as a line over a filled area; None values leave gaps (no data that minute)."""
    top = nice_ceiling(max((v for v in values if v is not None), default=0.0))
    parts = [
        f'<svg class="console-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
        *_grid(top, unit),
        *_x_axis(x_labels),
        *(_segment(run) for run in _runs(values, top)),
        "</svg>",
    ]
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped or a number we formatted


def _plot_x(index: int, count: int) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * index / max(1, count - 1)


def _plot_y(value: float, top: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - value / top)


def _grid(top: float, unit: str) -> list[str]:
    lines = []
    for step in range(GRID_LINES + 1):
        value = top * step / GRID_LINES
        y = _plot_y(value, top)
        lines.append(f'<line class="console-chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        text = f"{value:g}{escape(unit)}" if step else "0"
        lines.append(
            f'<text class="console-chart-label" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{text}</text>'
        )
    return lines


def _x_axis(labels: tuple[str, str, str]) -> list[str]:
    y = HEIGHT - 6
    middle = (LEFT + WIDTH - RIGHT) / 2
    anchors = ((LEFT, "start"), (middle, "middle"), (WIDTH - RIGHT, "end"))
    return [
        f'<text class="console-chart-label" x="{x:.1f}" y="{y}" text-anchor="{anchor}">{escape(text)}</text>'
        for (x, anchor), text in zip(anchors, labels, strict=True)
    ]


def _runs(values: Sequence[float | None], top: float) -> list[list[tuple[float, float]]]:
    """Consecutive non-empty points, as (x, y) in chart coordinates."""
    runs: list[list[tuple[float, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((_plot_x(index, len(values)), _plot_y(value, top)))
    return [run for run in runs if run]


def _segment(points: list[tuple[float, float]]) -> str:
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    if len(points) == 1:
        x, y = points[0]
        return f'<circle class="console-chart-dot" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>'
    base = _plot_y(0, 1)
    area = f"{points[0][0]:.1f},{base:.1f} {line} {points[-1][0]:.1f},{base:.1f}"
    return (
        f'<polygon class="console-chart-area" points="{area}"/><polyline class="console-chart-line" points="{line}"/>'
    )
