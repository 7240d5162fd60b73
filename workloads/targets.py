"""Targets and step budgets of the workloads: the one reader and the one writer of
reference_results/targets.json.

Each entry records the target-setting procedure and the exact command that produced it
(`python -m harness.set_target`, which writes it with `write_entry`). Imports nothing heavy:
scoring reads the targets without JAX.

A workload without an entry (one rule for all): a workload that declares a default step budget
runs with that budget and the target `UNSET_TARGET` -- this is how the target-setting run of a new
workload (or of one whose entry was removed) runs before its entry exists. A workload that declares
no default budget cannot run without its entry: UserError naming the file and the command.

Batch-size variants (`--batch_size`, harness/batch_scaling.py) may have entries of their own, under
`variant_key` (``fashion_mnist_resnet@batch=2560``: written by `python -m harness.set_target
--batch_size=2560`); a variant without one is judged by its workload's target (fixed-epoch
scaling keeps the target). Its steps always come from the workload's scaling rule.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from harness import json_files
from harness.errors import UserError

TARGETS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "reference_results", "targets.json")
#: The target of a workload that has no entry yet. The results store needs a number; every workload
#: with an entry maximises an accuracy, and no run reaches 1.0 (runs recorded with it, such as
#: set_target's own, are judged by their best validation metric, not by time-to-target).
UNSET_TARGET = 1.0
_SET_TARGET = "python -m harness.set_target"


def read_targets() -> dict[str, dict[str, Any]]:
    """workload -> its entry, as the file holds them now (no file: no entries)."""
    if not os.path.isfile(TARGETS_FILE):
        return {}
    targets = json_files.read(TARGETS_FILE, TARGETS_FILE, "restore it with `git checkout "
                              "reference_results/targets.json`")
    if not isinstance(targets, dict):
        raise UserError(f"{TARGETS_FILE} holds no JSON object: restore it with `git checkout "
                        "reference_results/targets.json`")
    return targets


def entry(workload: str) -> dict[str, Any] | None:
    """The entry of `workload`, None if it has none."""
    return read_targets().get(workload)


def write_entry(workload: str, new_entry: Mapping[str, Any]) -> str:
    """Replace (or add) the entry of `workload`, keeping every other one; returns the file's path.

    Written atomically (a temporary file renamed over it) as indented JSON with a final newline.
    """
    targets = read_targets()
    targets[workload] = dict(new_entry)
    directory = os.path.dirname(TARGETS_FILE)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".targets-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(targets, f, indent=2)
            f.write("\n")
        os.replace(tmp, TARGETS_FILE)
    except BaseException:
        os.unlink(tmp)
        raise
    target_for.cache_clear()  # this process sees the new entry
    return TARGETS_FILE


@functools.cache
def target_for(workload: str, default_step_budget: int | None = None) -> tuple[float, int]:
    """(validation target, step budget) of a workload, read once per process (module doc for a
    workload without an entry: (UNSET_TARGET, default_step_budget), or UserError without a default)."""
    found = entry(workload)
    if found is not None:
        return float(found["target"]), int(found["step_budget"])
    if default_step_budget is None:
        raise UserError(f"{workload} has no entry in {TARGETS_FILE}: restore the file with `git checkout "
                        f"reference_results/targets.json` or set the target with `{_SET_TARGET} "
                        f"--workload={workload}`")
    return UNSET_TARGET, default_step_budget


def variant_key(workload: str, batch_size: int) -> str:
    """The key of the entry of `workload` at global batch `batch_size` (a --batch_size variant)."""
    return f"{workload}@batch={batch_size}"


def variant_target(workload: str, batch_size: int) -> float | None:
    """The target of the variant's own entry (variant_key), None when it has none (module doc)."""
    found = entry(variant_key(workload, batch_size))
    return float(found["target"]) if found is not None else None


def current_targets() -> dict[str, float]:
    """workload -> target of every entry of reference_results/targets.json (read now, not cached)."""
    return {name: float(e["target"]) for name, e in read_targets().items()}


def data_fingerprint(data: object) -> str | None:
    """The fingerprint a workload's loaded data carries (its `fingerprint` attribute), else None."""
    value = getattr(data, "fingerprint", None)
    return str(value) if value is not None else None


def fingerprint_warning(workload: str, fingerprint: str | None) -> str | None:
    """One line when the workload's target was set on data with another fingerprint, else None.

    Derived datasets (pydocs_bert's records) depend on the installed Debian package and tokenizer
    version; a target set on other records is still applied, but the user should know.
    """
    if fingerprint is None:
        return None
    recorded = (entry(workload) or {}).get("data_fingerprint")
    if recorded is None or recorded == fingerprint:
        return None
    return (f"warning: the target of {workload} was set on data {recorded}, this run uses {fingerprint} "
            "(another data package or tokenizer version); targets and results compare like with like "
            "only on the same data (python -m harness.set_target re-sets it)")
