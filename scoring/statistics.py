"""The uncertainty of a leaderboard row and of a paired comparison (scipy.stats, nothing hand-made).

* Success fraction k/n: the 95% Wilson score interval (``binomtest(k, n).proportion_ci(method=
  "wilson")``; 35/50 gives [0.56, 0.81]).
* Median over seeds (steps to target with misses as inf, best validation metric): the exact
  distribution-free interval between two order statistics (``quantile_test(...)
  .confidence_interval()``), 95%. With fewer than 6 values no pair of order statistics covers the
  median with 95%; then the interval is [min, max] with its exact level 1 - 2 * 0.5**n (93.8% for 5
  seeds), reported beside it.
* Paired seeds (two rows, seed by seed): the sign test (``binomtest`` of the wins among the seeds
  that differ) and the Wilcoxon signed-rank test (``wilcoxon``), both two-sided.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
#: Below this many seeds a row's intervals are wide: the leaderboard says so in words.
FEW_SEEDS = 20


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials; (NaN, NaN) for n = 0."""
    if n == 0:
        return math.nan, math.nan
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def median_interval(values: Iterable[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(low, high, level): an exact order-statistic interval of the median of `values` (inf
    allowed: a missed target), at `confidence` when the sample allows it, else [min, max] at its
    exact level (module docstring). (NaN, NaN, NaN) for no values."""
    arr = np.sort(np.asarray(list(values), dtype=float))
    if arr.size == 0:
        return math.nan, math.nan, math.nan
    ci = stats.quantile_test(arr, q=0.0, p=0.5).confidence_interval(confidence_level=confidence)
    if not (math.isnan(ci.low) or math.isnan(ci.high)):
        return float(ci.low), float(ci.high), confidence
    return float(arr[0]), float(arr[-1]), 1.0 - 2.0 * 0.5 ** arr.size


def sign_test(differences: Iterable[float]) -> float:
    """Two-sided p-value that positive and negative differences are equally likely (zeros and NaN
    dropped); NaN when no difference is left."""
    d = np.asarray([x for x in differences if not math.isnan(x) and x != 0], dtype=float)
    if d.size == 0:
        return math.nan
    return float(stats.binomtest(int((d > 0).sum()), int(d.size)).pvalue)


def wilcoxon_test(differences: Iterable[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (finite ones, zeros dropped by
    scipy's default); NaN when fewer than one nonzero finite difference."""
    d = np.asarray([x for x in differences if math.isfinite(x)], dtype=float)
    if np.count_nonzero(d) == 0:
        return math.nan
    return float(stats.wilcoxon(d).pvalue)
