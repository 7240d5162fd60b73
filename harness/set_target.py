"""Target setting, the way AlgoPerf and MLPerf set theirs: tune a baseline, then take seed medians.

  python -m harness.set_target --workload=fashion_mnist_resnet --submission=nesterov \
      --grid='{"learning_rate": [0.5, 1, 2, 4]}' --seeds=0-4

Procedure (the step budget is fixed first, by the workload's design):
1. Train every point of the grid (the submission's defaults elsewhere) with the first seed for the
   full budget; pick the point with the best "best validation metric".
2. Train that point with every seed; the target is the median over seeds of the best validation
   metric, rounded to 3 decimals towards "easier" (down when maximizing).
3. Write target, budget, the chosen point, the per-seed values and this exact command to
   reference_results/targets.json.
Roughly half of the baseline's seeds then reach the target, as with LARS in Nado et al. (35/50).
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import shlex
import statistics
import sys

from absl import app, flags
from absl import logging as absl_logging

from harness import environment, inputs
from harness.runner import SweepConfig, run_sweep
from harness.spec import Direction, UserError
from workloads import get_workload
from workloads.targets import TARGETS_FILE, data_fingerprint

FLAGS = flags.FLAGS
flags.DEFINE_string("workload", None, "Workload whose target is set.")
flags.DEFINE_string("submission", "nesterov", "Baseline submission.")
flags.DEFINE_string("grid", "{}", "JSON mapping hyperparameter -> list of values (full grid).")
flags.DEFINE_string("hparams", None, "Fixed hyperparameters (JSON or file) under the grid.")
flags.DEFINE_string("seeds", "0-4", "Seeds for the final median; the first one tunes.")
flags.DEFINE_string("results", "results/targets.db", "SQLite results database for these runs.")
flags.DEFINE_string("data_dir", None, "Dataset directory.")


def grid_points(grid: dict[str, list]) -> list[dict]:
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def target_from(best_values: list[float | None], direction: Direction) -> float:
    """Median of the seeds' best validation values, rounded to 3 decimals towards easier."""
    median = statistics.median(v for v in best_values if v is not None)
    rounding = math.floor if direction is Direction.MAXIMIZE else math.ceil
    return rounding(round(median * 1000, 6)) / 1000


def main(argv: list[str]) -> None:
    absl_logging.set_verbosity(absl_logging.WARNING)  # keep the terminal for progress and results
    del argv
    try:
        if not FLAGS.workload:
            raise UserError("--workload is required")
        workload = get_workload(FLAGS.workload)
        grid = inputs.parse_json_mapping(FLAGS.grid, "grid")
        fixed = inputs.parse_json_mapping(FLAGS.hparams, "hparams")
        seeds = inputs.parse_seeds(FLAGS.seeds)
        base = dict(workload=FLAGS.workload, submission=FLAGS.submission, results=FLAGS.results,
                    data_dir=FLAGS.data_dir, progress=sys.stderr.isatty())
        scored = []
        for point in grid_points(grid):
            (summary,) = run_sweep(SweepConfig(hparams={**fixed, **point}, seeds=(seeds[0],), **base))
            scored.append((summary.best_valid, point, summary))
        sign = 1 if workload.direction is Direction.MAXIMIZE else -1
        finite = [s for s in scored if s[0] is not None and math.isfinite(s[0])]
        if not finite:
            raise UserError("every grid point diverged; widen or move the grid")
        best_value, best_point, first = max(finite, key=lambda s: sign * s[0])
        rest = run_sweep(SweepConfig(hparams={**fixed, **best_point}, seeds=tuple(seeds[1:]), **base))
        values = [first.best_valid] + [s.best_valid for s in rest]
        target = target_from(values, workload.direction)
        fingerprint = data_fingerprint(workload.load_data(FLAGS.data_dir))
        with open(TARGETS_FILE) as f:
            targets = json.load(f)
        targets[FLAGS.workload] = {
            "target": target, "step_budget": workload.step_budget, "metric": workload.metric,
            "direction": workload.direction.value, "baseline": FLAGS.submission,
            "baseline_hparams": {**fixed, **best_point},
            "tuning": [{"hparams": p, "best_valid": v} for v, p, _ in scored],
            "seed_best_valid": dict(zip(map(str, seeds), values)),
            "procedure": "median over seeds of the best validation metric of the tuned baseline, "
                         "rounded down to 3 decimals (python -m harness.set_target; see its docstring)",
            "command": "python -m harness.set_target " + " ".join(
                shlex.quote(f"--{k}={json.dumps(v) if k == 'grid' else v}") for k, v in
                (("workload", FLAGS.workload), ("submission", FLAGS.submission), ("grid", grid),
                 ("hparams", FLAGS.hparams), ("seeds", FLAGS.seeds)) if v),
            "git_revision": environment.git_revision(),
            "data_fingerprint": fingerprint,
            "date": datetime.date.today().isoformat(),
        }
        with open(TARGETS_FILE, "w") as f:
            json.dump(targets, f, indent=2)
            f.write("\n")
        print(f"target of {FLAGS.workload}: {workload.metric} {target} (median of {values}) with "
              f"{FLAGS.submission} {best_point}; written to {TARGETS_FILE}")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
