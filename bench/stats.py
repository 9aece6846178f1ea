"""Medians, percentiles and a bootstrap confidence interval for the median."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between the closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def bootstrap_ci(values: Sequence[float], rounds: int = 4000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the median."""
    if not values:
        return math.nan, math.nan
    rng = random.Random(seed)
    values = list(values)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(rounds))
    return medians[int(0.025 * rounds)], medians[int(0.975 * rounds) - 1]


@dataclass(frozen=True)
class Estimate:
    """A median of paired differences with its 95% CI."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Estimate:
        low, high = bootstrap_ci(values)
        return cls(median(values), low, high, len(values))

    def fmt(self, unit: str = "ms", digits: int = 1) -> str:
        return f"{self.median:.{digits}f} {unit} (95% CI {self.low:.{digits}f} – {self.high:.{digits}f}, n={self.n})"
