r"""Schedule discovery from a grafted run (Agarwal et al. Sec. 5).

From the recorded per-group ratios r_t^rho = ||s_M^rho|| / ||s_D^rho|| of a run of M#D::

    c_rho = median { r_t^rho : t <= N, r_t^rho defined }            (the paper: N = 2000 / 500)
    with --round:  c_rho <- 10 ** floor(log10 c_rho)                 ("the nearest power of 10 which
                                                                      is smaller", Sec. 5)

The paper also ties all attention groups to one manual value beta (its set D_beta = {0.1, 1, 10,
100, beta}); that tie is a by-hand choice and is left to the user (edit the JSON). The result is
the corrections file of the sgd_corrected submission (submissions/lib/corrections.py).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.store import ResultsReader
from scoring.study import load as load_study

RATIO_PREFIX = "ratio/"


def round_down_power_of_10(x: float) -> float:
    """10 ** floor(log10 x) for x > 0 (18.8 -> 10, 312.9 -> 100, 0.3 -> 0.1)."""
    if not x > 0:
        raise UserError(f"cannot round the multiplier {x} to a power of 10: it must be > 0")
    return float(10.0 ** math.floor(math.log10(x) + 1e-12))


def discover(results: ResultsReader, run_id: int, first_steps: int, round_: bool = False
             ) -> dict[str, Any]:
    """{"multipliers": {group: c}, "partition": ..., "provenance": {...}} of run ``run_id``."""
    if first_steps <= 0:
        raise UserError(f"--first_steps must be a positive number of steps, got {first_steps}")
    run = results.run(run_id)
    rows = results.diagnostics(run_id, max_step=first_steps, prefix=RATIO_PREFIX)
    if rows.empty:
        raise UserError(f"run {run_id} ({run['submission']}) has no recorded grafting ratios at steps "
                        f"<= {first_steps}; run a grafted submission (e.g. --submission=adamw#sgd) with "
                        "--diagnostics_every=K, K <= --first_steps")
    by_group: dict[str, list[float]] = {}
    for name, value in zip(rows["name"], rows["value"]):
        values = by_group.setdefault(name.removeprefix(RATIO_PREFIX), [])
        if not math.isnan(value):
            values.append(float(value))
    undefined = [g for g, v in by_group.items() if not v]
    if undefined:
        raise UserError(f"run {run_id}: groups {', '.join(sorted(undefined))} have no defined ratio "
                        f"at steps <= {first_steps} (D's step was always zero); raise --first_steps")
    medians = {g: float(np.median(v)) for g, v in sorted(by_group.items())}
    multipliers = {g: round_down_power_of_10(c) for g, c in medians.items()} if round_ else medians
    hparams = json.loads(run["hparams"])
    partition = hparams.get("partition") if isinstance(hparams, dict) else None
    return {
        "multipliers": multipliers,
        "partition": partition,
        "provenance": {
            "run_id": run_id, "workload": run["workload"], "submission": run["submission"],
            "seed": int(run["seed"]), "first_steps": first_steps,
            "steps_used": int(rows["step"].nunique()),
            "statistic": "median", "rounding": "down to a power of 10" if round_ else None,
            "medians": medians,
        },
    }


def selected_run(results: str, study: str) -> int:
    """The run of a tuning study's selected trial (the tuned point, as Agarwal et al. take the ratios
    of their tuned graft); a one-line UserError while the study has selected none."""
    report = load_study(results, study)
    chosen = report.trials[report.trials["trial"] == report.selected]
    if report.selected is None or chosen.empty:
        raise UserError(f"study {study} has not selected a trial yet; finish its trials "
                        f"(`{report.study['command']}`) or pass --run=RUN_ID")
    return int(chosen["run_id"].iloc[0])


def discover_to_file(results: str, run_id: int, first_steps: int, round_: bool, out: str | None
                     ) -> str:
    """Run ``discover`` on the database at ``results``; write JSON to ``out`` (or return it)."""
    with ResultsReader(results) as reader:
        result = discover(reader, run_id, first_steps, round_)
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    if out:
        try:
            with open(out, "w") as f:
                f.write(text)
        except OSError as e:
            raise UserError(f"cannot write {out}: {e.strerror or e}; pass --out=WRITABLE.json") from None
    return text
