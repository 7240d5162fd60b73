"""A study's selected point as a named configuration (harness/configs.py), so that
``harness run --submission=S --config=NAME`` trains exactly what the study confirmed.

``python -m scoring tuned-config --study=NAME --out=submissions/<s>/configs/<config>.json``

The file's ``hparams`` are the selected trial's ``hparams_given`` (the study's fixed
hyperparameters, from --config and --hparams, with the searched point on top: what the harness
applied to the submission's defaults), its ``knobs`` the trial's ``knobs_given``; ``source`` names the
study, its command and its search space; ``notes`` give the selection and the confirmation (median
best validation metric, seeds that reached the target). A study without a selection yet (still
tuning, or exhausted) is a one-line error.
"""

from __future__ import annotations

import json
import os
from typing import Any

from harness.errors import UserError
from harness.formatting import format_metric
from harness.store import ResultsReader
from scoring import study as study_report


def build(results: str, name: str) -> dict[str, Any]:
    """The named configuration (a JSON object) of study `name`'s selected point."""
    report = study_report.load(results, name)
    selected = report.selected
    if selected is None:
        raise UserError(f"study {name} has no selected trial yet (status {report.study['status']}); run its "
                        f"command to the end first: {report.study['command']}")
    trial = report.trials[report.trials["trial"] == selected].iloc[0]
    with ResultsReader(results) as reader:
        run = reader.run(int(trial["run_id"]))
    s = report.study
    fmt = lambda v: format_metric(v, report.metric)  # noqa: E731
    notes = [f"Selected trial {selected + 1} of {len(report.trials)} ({int(report.trials['feasible'].sum())} "
             f"feasible; select {s['select_rule']}): best valid {fmt(trial['best_valid'])} on trial seed "
             f"{int(trial['seed'])}."]
    c = report.confirmation
    if not c.empty:
        notes.append(f"Confirmation on {len(c)} of {int(s['confirm_seeds'])} seeds: median best valid "
                     f"{fmt(report.confirmation_median)}, target {fmt(report.target)} reached by "
                     f"{report.confirmation_reached}/{len(c)}.")
    return {
        "workload": s["workload"],
        "source": f"tuning study {s['name']} (python -m harness tune; search space {s['search_space_hash']}, "
                  f"study seed {int(s['study_seed'])}): {s['command']}",
        "hparams": json.loads(run["hparams_given"]),
        "knobs": json.loads(run["knobs_given"]),
        "notes": " ".join(notes),
    }


def write(results: str, name: str, out: str) -> str:
    """Write study `name`'s configuration to `out` (a .json path whose directory exists); the path."""
    if not out.endswith(".json"):
        raise UserError(f"--out={out}: a named config is a .json file, e.g. submissions/<s>/configs/<name>.json")
    if not os.path.isdir(os.path.dirname(out) or "."):
        raise UserError(f"--out={out}: directory {os.path.dirname(out)} does not exist; create it first")
    config = build(results, name)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    return out
