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

With --batch_size=B the procedure sets the target of the workload's variant at global batch B
(harness/batch_scaling.py), written under the entry ``<workload>@batch=B``
(workloads/targets.variant_key); without such an entry a variant is judged by its workload's target.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import shlex
import statistics
from collections.abc import Sequence

from absl import flags

from harness import audit, batch_scaling, cli, environment, plan
from harness.direction import Direction
from harness.errors import UserError
from harness.runner import RunOptions, run_sweep
from workloads import get_workload
from workloads.targets import data_fingerprint, variant_key, write_entry


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("workload", None, "Workload whose target is set.", flag_values=fv)
    flags.DEFINE_string("submission", "nesterov", "Baseline submission.", flag_values=fv)
    flags.DEFINE_string("grid", "{}", "JSON mapping hyperparameter -> list of values (full grid).",
                        flag_values=fv)
    flags.DEFINE_string("hparams", None, "Fixed hyperparameters (JSON or file) under the grid.",
                        flag_values=fv)
    flags.DEFINE_string("seeds", "0-4", "Seeds for the final median; the first one tunes.", flag_values=fv)
    flags.DEFINE_bool("many_seeds", False, f"Allow --seeds of more than {cli.MANY_SEEDS:,} seeds.",
                      flag_values=fv)
    flags.DEFINE_string("results", "results/targets.db", "SQLite results database for these runs.",
                        flag_values=fv)
    flags.DEFINE_string("data_dir", None, "Dataset directory.", flag_values=fv)
    flags.DEFINE_integer("batch_size", None, "Set the target of the workload's variant at this global batch "
                         "size (written as <workload>@batch=B; default: the workload's own batch).",
                         flag_values=fv)


def grid_points(grid: dict[str, list]) -> list[dict]:
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def target_from(best_values: list[float | None], direction: Direction) -> float:
    """Median of the seeds' best validation values, rounded to 3 decimals towards easier."""
    median = statistics.median(v for v in best_values if v is not None)
    rounding = math.floor if direction is Direction.MAXIMIZE else math.ceil
    return rounding(round(median * 1000, 6)) / 1000


def main(argv: list[str], fv: flags.FlagValues) -> int:
    del argv
    if not fv.workload:
        raise UserError("--workload is required")
    base = get_workload(fv.workload)
    workload = batch_scaling.resized(base, fv.batch_size)
    key = fv.workload if workload is base else variant_key(fv.workload, fv.batch_size)
    grid = cli.parse_json_mapping(fv.grid, "grid")
    fixed = cli.parse_json_mapping(fv.hparams, "hparams")
    seeds = cli.parse_seeds(fv.seeds, many=fv.many_seeds)

    def sweep(point: dict, seeds: Sequence[int]) -> list:
        with audit.protecting(fv.data_dir, fv.results):  # harness/audit.py
            run_plan = plan.build(fv.workload, fv.submission, hparams={**fixed, **point},
                                  batch_size=fv.batch_size)
            return run_sweep(run_plan, RunOptions(seeds=seeds, results=fv.results, data_dir=fv.data_dir,
                                                  progress=cli.progress_default(None), rerun=True))

    scored = []
    for point in grid_points(grid):
        (summary,) = sweep(point, (seeds[0],))
        scored.append((summary.best_valid, point, summary))
    sign = 1 if workload.direction is Direction.MAXIMIZE else -1
    finite = [s for s in scored if s[0] is not None and math.isfinite(s[0])]
    if not finite:
        raise UserError("every grid point diverged; widen or move the grid")
    best_value, best_point, first = max(finite, key=lambda s: sign * s[0])
    rest = sweep(best_point, tuple(seeds[1:]))
    values = [first.best_valid] + [s.best_valid for s in rest]
    target = target_from(values, workload.direction)
    fingerprint = data_fingerprint(workload.load_data(fv.data_dir))
    path = write_entry(key, {
        "target": target, "step_budget": sum(p.steps for p in workload.phases), "metric": workload.metric,
        "direction": workload.direction.value, "baseline": fv.submission,
        "baseline_hparams": {**fixed, **best_point},
        "tuning": [{"hparams": p, "best_valid": v} for v, p, _ in scored],
        "seed_best_valid": dict(zip(map(str, seeds), values)),
        "procedure": "median over seeds of the best validation metric of the tuned baseline, "
                     "rounded down to 3 decimals (python -m harness.set_target; see its docstring)",
        "command": "python -m harness.set_target " + " ".join(
            shlex.quote(f"--{k}={json.dumps(v) if k == 'grid' else v}") for k, v in
            (("workload", fv.workload), ("submission", fv.submission), ("grid", grid),
             ("hparams", fv.hparams), ("seeds", fv.seeds), ("batch_size", fv.batch_size)) if v),
        "git_revision": environment.git_revision(),
        "data_fingerprint": fingerprint,
        "date": datetime.date.today().isoformat(),
    })
    print(f"target of {key}: {workload.metric} {target} (median of {values}) with "
          f"{fv.submission} {best_point}; written to {path}")
    return 0


if __name__ == "__main__":
    cli.run(define_flags, main)
