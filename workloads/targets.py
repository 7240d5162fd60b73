"""Targets and step budgets of the workloads, read from reference_results/targets.json.

Each entry records the target-setting procedure and the exact command that produced it.
"""

from __future__ import annotations

import functools
import json
import os

TARGETS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "reference_results", "targets.json")


@functools.cache
def target_for(workload: str) -> tuple[float, int]:
    """(validation target, step budget) of a workload."""
    with open(TARGETS_FILE) as f:
        entry = json.load(f)[workload]
    return float(entry["target"]), int(entry["step_budget"])


def current_targets() -> dict[str, float]:
    """workload -> target of every entry of reference_results/targets.json (read now, not cached)."""
    with open(TARGETS_FILE) as f:
        return {name: float(entry["target"]) for name, entry in json.load(f).items()}


def data_fingerprint(data: object) -> str | None:
    """The fingerprint a workload's loaded data carries (its `fingerprint` attribute), else None."""
    value = getattr(data, "fingerprint", None)
    return str(value) if value is not None else None


def fingerprint_warning(workload: str, fingerprint: str | None) -> str | None:
    """One line when the workload's target was set on data with another fingerprint, else None.

    Derived datasets (pydocs_bert's records) depend on the installed Debian package and tokenizer
    version; a target set on other records is still applied, but the user should know.
    """
    if fingerprint is None or not os.path.isfile(TARGETS_FILE):
        return None
    with open(TARGETS_FILE) as f:
        entry = json.load(f).get(workload) or {}
    recorded = entry.get("data_fingerprint")
    if recorded is None or recorded == fingerprint:
        return None
    return (f"warning: the target of {workload} was set on data {recorded}, this run uses {fingerprint} "
            "(another data package or tokenizer version); targets and results compare like with like "
            "only on the same data (python -m harness.set_target re-sets it)")
