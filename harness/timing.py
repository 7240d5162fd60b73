"""Side-by-side timing helpers of the benchmark scripts: alternating rounds and robust summaries.

Kept apart from the scripts (which define command-line flags) so they can be imported and tested.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import numpy as np

K = TypeVar("K")
T = TypeVar("T")


def alternate(sides: Mapping[K, Callable[[], T]], rounds: int,
              report: Callable[[int, dict[K, list[T]]], None]) -> dict[K, list[T]]:
    """Run every side once per round, in forward order on even rounds and reverse on odd (ABBA)."""
    names = list(sides)
    times: dict[K, list[T]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names if r % 2 == 0 else names[::-1]:
            times[n].append(sides[n]())
        report(r, times)
    return times


def median_and_quartiles(values: Sequence[float]) -> str:
    """'median (interquartile range q1-q3)' of `values`, to 3 decimals."""
    if len(values) < 2:
        return f"{values[0]:.3f}"
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"{statistics.median(values):.3f} (interquartile range {q1:.3f}-{q3:.3f})"


def best_time_ratio(fast: list[list[float]], slow: list[list[float]]) -> float:
    """sum over segments of (fastest time of the segment in `fast` runs) / same for `slow`."""
    return float(np.sum(np.min(fast, axis=0)) / np.sum(np.min(slow, axis=0)))
