"""How the suite writes values for people: hyperparameters as ``k=v`` pairs, metric values, and
phase descriptions. One place for each, used by the harness's run lines, the results' row labels
and the leaderboard. Imports no JAX (scoring uses it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # harness.spec imports JAX; this module must not
    from harness.spec import Phase


def _pair_value(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return f"{v:g}" if isinstance(v, float) else str(v)


def compact_pairs(mapping: Mapping[str, Any]) -> str:
    """``k=v`` pairs sorted by key, comma-separated: floats in ``%g`` form, booleans lowercase."""
    return ",".join(f"{k}={_pair_value(mapping[k])}" for k in sorted(mapping))


def compact_hparams(hparams: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """One mapping as ``compact_pairs``; a list with one mapping per phase as compact JSON."""
    if isinstance(hparams, Mapping):
        return compact_pairs(hparams)
    return json.dumps(list(hparams), sort_keys=True, separators=(",", ":"))


def is_accuracy(metric: str) -> bool:
    """Whether values of ``metric`` are fractions shown as percents (any metric named *accuracy*)."""
    return "accuracy" in str(metric).lower()


def format_metric(value: Any, metric: str) -> str:
    """A metric value: ``97.85%`` for accuracies, 4 decimals otherwise, ``-`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    value = float(value)
    return f"{100.0 * value:.2f}%" if is_accuracy(metric) else f"{value:.4f}"


def describe_phases(phases: Sequence[Phase]) -> str:
    """``117 steps at batch 1280 (micro-batch 64)``, phases joined by ``then``, sequence lengths
    as ``x seq 128``."""
    return " then ".join(f"{p.steps} steps at batch {p.global_batch_size}"
                         + (f" x seq {p.seq_len}" if p.seq_len else "")
                         + f" (micro-batch {p.micro_batch_size})" for p in phases)
