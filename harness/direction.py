"""Whether a larger or a smaller value of a workload's metric is better. Imports no JAX (scoring
uses it too); re-exported by harness.spec."""

from __future__ import annotations

import enum


class Direction(enum.Enum):
    """Whether a larger or a smaller value of the workload's metric is better (declared, not guessed)."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"

    def reached(self, value: float, target: float) -> bool:
        return value >= target if self is Direction.MAXIMIZE else value <= target

    def better(self, a: float, b: float) -> bool:
        return a > b if self is Direction.MAXIMIZE else a < b
