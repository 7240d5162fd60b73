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
