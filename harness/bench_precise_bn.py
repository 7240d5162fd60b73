"""Does the validation metric of fashion_mnist_resnet measure the model? (issue 15, section 0; a
script, not a test)

  python -m harness.bench_precise_bn [--submissions=nesterov,momentum,adamw,lars,lamb] [--seeds=0-2]
                                     [--batches=10] [--out_dir=docs/precise_bn]

Trains every seed of every submission at its defaults for the full budget through the harness
(RunPlan, Sweep: the compiled steps and the recorded evaluations of `harness run`) and, at every
evaluation, measures the validation accuracy of the same params under several definitions of the
batch-norm statistics used in eval mode:

- `running`: the run's running averages, momentum rho = 0.9 per step (MLPerf's value for 2,512
  steps): the metric recorded today;
- `transposed`: running averages with rho' = rho^(2512 / 117) = 0.104, the momentum transposed to
  the 117-step horizon so that the statistics of any fraction f of the run weigh as much as in
  MLPerf's run (rho'^(f·117) = rho^(f·2512)). They are kept beside the run's (a wrapper of the
  compiled step, on the device): each step's mean micro-batch statistics are recovered from the
  run's averages, m_t = (ra_t - rho·ra_{t-1}) / (1 - rho), and averaged with rho'. The params'
  trajectory does not depend on rho (train mode normalises with batch statistics), so this is the
  run a workload with bn_momentum = rho' would make;
- `precise`: precise BN (workloads/image_classification.py, knob precise_bn_batches = K): per layer,
  the mean over the micro-batches of 64 (the ghost-BN span) of the micro-batch mean and variance,
  recomputed with the current params on the first K = --batches batches of 1,280 of the training
  stream of seed 2^31, the same batches at every evaluation;
- `precise_k1`: the same on the first of those batches only (K = 1, 20 micro-batches);
- `population`: the population statistics of the same K·1,280 examples (the variance of all of
  them: the mean micro-batch variance plus the variance of the micro-batch means), as Wu & Johnson
  2021 (Sec. 3) define precise BN, instead of the mean of the ghost-batch statistics.

The training accuracy (train mode, batch statistics, mean over the steps since the previous
evaluation) is the recorded one. At the last evaluation of each seed the knob's own code path (a
workload built with precise_bn_batches = K, its eval_model_state hook) is checked against `precise`,
and the time it adds to an evaluation is measured side by side with a plain evaluation (ABBA).

Writes evals.csv, tables.md and precise_bn.png to --out_dir; prints the tables.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from absl import flags

from harness import cli, parallel, store
from harness import plan as plans
from harness.errors import UserError
from harness.runner import RunOptions, Sweep
from harness.timing import alternate
from workloads import get_workload
from workloads.image_classification import (
    PRECISE_BN_SEED,
    ImageClassificationWorkload,
    micro_batch_statistics,
)
from workloads.imagenet import MLPERF_BUDGET_STEPS

WORKLOAD = "fashion_mnist_resnet"
#: Definitions of the eval-mode statistics, in the order of the tables (module docstring).
DEFINITIONS = ("running", "transposed", "precise", "precise_k1", "population")


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_list("submissions", ["nesterov", "momentum", "adamw", "lars", "lamb"],
                      "Submissions, each at its defaults.", flag_values=fv)
    flags.DEFINE_string("seeds", "0-2", "Seeds of each submission.", flag_values=fv)
    flags.DEFINE_integer("batches", 10, "K of precise BN: training batches of 1,280 per evaluation.",
                         flag_values=fv)
    flags.DEFINE_integer("timing_rounds", 6, "Alternating rounds of the evaluation-time measurement.",
                         flag_values=fv)
    flags.DEFINE_string("out_dir", "docs/precise_bn", "Where evals.csv, tables.md and the plot go.",
                        flag_values=fv)
    flags.DEFINE_string("data_dir", None, "Dataset directory.", flag_values=fv)


def transposed_momentum(rho: float, from_steps: int, to_steps: int) -> float:
    """rho' with rho'^to_steps = rho^from_steps: the averages give any fraction of the run the weight
    that rho gives it in a run of `from_steps` steps."""
    return float(rho ** (from_steps / to_steps))


@dataclasses.dataclass(frozen=True)
class EvalRow:
    """One evaluation of one seed: training accuracy and validation accuracy per definition."""

    submission: str
    seed: int
    step: int
    train: float
    valid: dict[str, float]


def first_reaching(rows: Sequence[EvalRow], definition: str, target: float) -> int | None:
    """The first step whose validation accuracy under `definition` reaches `target` (None: never)."""
    return next((r.step for r in rows if r.valid[definition] >= target), None)


def main(argv: list[str], fv: flags.FlagValues) -> int:
    del argv
    seeds = cli.parse_seeds(fv.seeds)
    if not 1 <= fv.batches <= 39:
        raise UserError(f"--batches must be in [1, 39] (one epoch of batches), got {fv.batches}")
    os.makedirs(fv.out_dir, exist_ok=True)
    rows: list[EvalRow] = []
    checks: list[float] = []
    timing: dict[str, list[float]] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(results=os.path.join(tmp, "bench.db"), data_dir=fv.data_dir, progress=False)
        conn = store.connect(options.results)
        sweep: _MeasuringSweep | None = None
        for name in fv.submissions:
            run_plan = plans.build(WORKLOAD, name)
            sweep = _MeasuringSweep(run_plan, options, fv.batches, sweep)
            for seed in seeds:
                t0 = time.perf_counter()
                summary = sweep.run_seed(conn, seed)
                if summary.status != "completed":
                    raise RuntimeError(sweep.summary_line(summary))
                print(f"{sweep.summary_line(summary)} [{time.perf_counter() - t0:.0f} s with the "
                      "extra evaluations]", flush=True)
            rows += sweep.rows
            checks += sweep.checks
        conn.close()
        assert sweep is not None
        timing = sweep.time_evaluations(fv.timing_rounds)
    wall = time.perf_counter() - start
    target = float(sweep.workload.target)
    tables = _tables(rows, target, sweep.rho_transposed, fv.batches, checks, timing, wall)
    print(tables)
    _write_csv(rows, os.path.join(fv.out_dir, "evals.csv"))
    with open(os.path.join(fv.out_dir, "tables.md"), "w") as f:
        f.write(tables)
    _plot(rows, target, sweep.rho_transposed, fv.batches, os.path.join(fv.out_dir, "precise_bn.png"))
    print(f"wrote {fv.out_dir}/evals.csv, tables.md, precise_bn.png; {wall / 60:.1f} min in all "
          f"({jax.device_count()} device(s))")
    return 0


class _MeasuringSweep(Sweep):
    """A Sweep (harness/runner.py) that also evaluates every definition of DEFINITIONS at each of
    its evaluations (after the recorded one, in evaluation time: the training clock is untouched)."""

    def __init__(self, plan: plans.RunPlan, options: RunOptions, batches: int,
                 previous: _MeasuringSweep | None) -> None:
        super().__init__(plan, options)
        wl = _image_workload(self.workload)
        self.rho = float(wl.knobs["bn_momentum"])
        self.rho_transposed = transposed_momentum(self.rho, MLPERF_BUDGET_STEPS, plan.budget)
        self.batches = batches
        # The knob's own code path, for the check at each seed's last evaluation and the timing.
        self.with_knob = _image_workload(get_workload(wl.name, {**wl.knobs, "precise_bn_batches": batches}))
        self.with_knob_k1 = _image_workload(get_workload(wl.name, {**wl.knobs, "precise_bn_batches": 1}))
        stream = wl.train_batches(self.data, PRECISE_BN_SEED)
        self._xs = jnp.stack([next(stream)["x"] for _ in range(batches)])
        self._micro_stats: Callable[..., Any] = (previous._micro_stats if previous is not None else
                             jax.jit(_micro_statistics_fn(wl.statistics_model(), wl.micro_batch_size)))
        self._average = jax.jit(_average_fn(self.rho, self.rho_transposed))
        self._seed, self._alt, self._prev = 0, None, None
        self._last_state: Any = None
        self.rows: list[EvalRow] = []
        self.checks: list[float] = []

    def compiled(self, plan: Any) -> Any:
        """The compiled steps, each wrapped to keep the transposed running averages."""
        compiled = super().compiled(plan)
        return dataclasses.replace(compiled, steps=[self._tracking(s) for s in compiled.steps])

    def _tracking(self, step: Callable[..., Any]) -> Callable[..., Any]:
        def tracked(state: Any, batch: Any, rng: Any, index: Any, traced: Any) -> Any:
            if int(index) == 0:  # a new seed: the averages start at the initial state's (0, 1)
                self._alt = self._prev = state.model_state
            new_state, metrics = step(state, batch, rng, index, traced)
            self._alt = self._average(self._alt, self._prev, new_state.model_state)
            self._prev = new_state.model_state
            return new_state, metrics

        return tracked

    def run_seed(self, conn: Any, seed: int, plan: Any = None, study: Any = None) -> Any:
        self._seed = seed
        return super().run_seed(conn, seed, plan, study)

    def _evaluate(self, state: Any, step: int, train_seconds: float, pending: Any, recorder: Any,
                  outcome: Any) -> None:
        super()._evaluate(state, step, train_seconds, pending, recorder, outcome)
        per_micro = self._micro_stats(state.params, state.model_state, self._xs)
        states = {"transposed": self._alt, "precise": _ghost_mean(per_micro, None),
                  "precise_k1": _ghost_mean(per_micro, 1), "population": _population(per_micro)}
        valid = {"running": float(outcome.final_valid)}
        for name, model_state in states.items():
            placed = parallel.put_replicated(model_state, self.plan.mesh)
            valid[name] = self.evaluator.split(state.params, placed, "validation")[1]
        self.rows.append(EvalRow(self.plan.submission.name, self._seed, step, float(outcome.final_train), valid))
        if step == self.plan.budget:  # the knob's code path gives the same statistics
            knob_state = parallel.put_replicated(
                self.with_knob.eval_model_state(state.params, state.model_state, self.data), self.plan.mesh)
            knob_valid = self.evaluator.split(state.params, knob_state, "validation")[1]
            self.checks.append(abs(knob_valid - valid["precise"]))
            self._last_state = state

    def time_evaluations(self, rounds: int) -> dict[str, list[float]]:
        """Seconds of a plain evaluation (validation and test, the running averages) and of the
        statistics pass the knob adds (K batches and 1 batch), in alternating rounds on the last
        seed's final state."""
        state, data = self._last_state, self.data

        def timed(f: Callable[[], Any]) -> Callable[[], float]:
            def run() -> float:
                t0 = time.perf_counter()
                jax.block_until_ready(f())
                return time.perf_counter() - t0
            return run

        sides = {
            "evaluation (validation + test)": timed(lambda: self.evaluator.evaluate(state)),
            f"precise BN statistics, K={self.batches}": timed(
                lambda: self.with_knob.eval_model_state(state.params, state.model_state, data)),
            "precise BN statistics, K=1": timed(
                lambda: self.with_knob_k1.eval_model_state(state.params, state.model_state, data)),
        }
        for f in sides.values():  # compile and warm up outside the measurement
            f()
        return alternate(sides, rounds, lambda r, t: None)


def _image_workload(workload: Any) -> ImageClassificationWorkload:
    """`workload`, which must be an image workload (its precise-BN code is measured)."""
    if not isinstance(workload, ImageClassificationWorkload):
        raise UserError(f"{workload.name} is not an image-classification workload with batch norm")
    return workload


def _micro_statistics_fn(stats_model: Any, micro_batch_size: int) -> Callable[..., Any]:
    """(params, model_state, xs (K, G, ...)) -> every layer's statistics per micro-batch, leaves
    (K, G / micro_batch_size, C): precise_bn_statistics before its means."""

    def per_micro(params: Any, model_state: Any, xs: Any) -> Any:
        def per_batch(x: Any) -> Any:
            micro = x.reshape(x.shape[0] // micro_batch_size, micro_batch_size, *x.shape[1:])
            return jax.vmap(lambda mb: micro_batch_statistics(stats_model, params, model_state, mb))(micro)

        return jax.lax.map(per_batch, xs)

    return per_micro


def _average_fn(rho: float, rho_transposed: float) -> Callable[[Any, Any, Any], Any]:
    """(averages, run's previous averages, run's new averages) -> averages with rho_transposed of the
    step's mean micro-batch statistics m_t = (new - rho·previous) / (1 - rho)."""

    def average(alt: Any, prev: Any, new: Any) -> Any:
        return jax.tree.map(lambda a, p, n: rho_transposed * a + (1 - rho_transposed) * (n - rho * p) / (1 - rho),
                            alt, prev, new)

    return average


def _ghost_mean(per_micro: Any, batches: int | None) -> Any:
    """The mean over the micro-batches of the first `batches` batches (None: all): precise BN."""
    return jax.tree.map(lambda s: s[:batches].mean((0, 1)), per_micro)


def _population(per_micro: Any) -> Any:
    """Population statistics of all the examples from their micro-batches' (equal sizes): mean of
    the means; variance = mean micro-batch variance + variance of the micro-batch means."""

    def layer(stats: dict[str, Any]) -> dict[str, Any]:
        if set(stats) != {"mean", "var"}:
            return {k: layer(v) for k, v in stats.items()}
        mean = stats["mean"].mean((0, 1))
        return {"mean": mean, "var": stats["var"].mean((0, 1)) + ((stats["mean"] - mean) ** 2).mean((0, 1))}

    return layer(per_micro)


# --- reporting --------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def _tables(rows: list[EvalRow], target: float, rho_t: float, batches: int, checks: list[float],
            timing: dict[str, list[float]], wall: float) -> str:
    names = {"running": "running avg ρ=0.9", "transposed": f"running avg ρ'={rho_t:.3f}",
             "precise": f"precise BN K={batches}", "precise_k1": "precise BN K=1",
             "population": f"population K={batches}"}
    subs = list(dict.fromkeys(r.submission for r in rows))
    seeds = sorted({r.seed for r in rows})
    steps = sorted({r.step for r in rows})
    out = [f"Median over seeds {','.join(map(str, seeds))} of the accuracy (%) at each evaluation: "
           "train (train mode, batch statistics) and validation under each definition.\n"]
    for sub in subs:
        out.append(f"\n**{sub}**\n\n| step | train | " + " | ".join(names[d] for d in DEFINITIONS) + " |")
        out.append("| ---: | ---: | " + " | ".join("---:" for _ in DEFINITIONS) + " |")
        for step in steps:
            at = [r for r in rows if r.submission == sub and r.step == step]
            out.append(f"| {step} | {_pct(_median([r.train for r in at]))} | "
                       + " | ".join(_pct(_median([r.valid[d] for r in at])) for d in DEFINITIONS) + " |")
    out.append(f"\nAt the end of the budget (step {steps[-1]}), per seed: train − validation (points), "
               f"and the step at which validation first reaches the target {100 * target:.2f}% "
               "('-': never), per definition.\n")
    out.append("| submission | seed | train | " + " | ".join(f"gap {names[d]}" for d in DEFINITIONS)
               + " | " + " | ".join(f"reached {names[d]}" for d in DEFINITIONS) + " |")
    out.append("| --- | ---: | ---: | " + " | ".join("---:" for _ in DEFINITIONS * 2) + " |")
    for sub in subs:
        for seed in seeds:
            run = [r for r in rows if r.submission == sub and r.seed == seed]
            last = run[-1]
            reached = [first_reaching(run, d, target) for d in DEFINITIONS]
            out.append(f"| {sub} | {seed} | {_pct(last.train)} | "
                       + " | ".join(f"{100 * (last.train - last.valid[d]):+.1f}" for d in DEFINITIONS) + " | "
                       + " | ".join("-" if s is None else str(s) for s in reached) + " |")
    out.append("\nPer submission: seeds reaching the target, median steps to target (inf: fewer than half "
               "reach it), median best validation accuracy (%).\n")
    out.append("| submission | " + " | ".join(names[d] for d in DEFINITIONS) + " |")
    out.append("| --- | " + " | ".join("---" for _ in DEFINITIONS) + " |")
    for sub in subs:
        cells = []
        for d in DEFINITIONS:
            per_seed = [[r for r in rows if r.submission == sub and r.seed == s] for s in seeds]
            reached = [first_reaching(run, d, target) for run in per_seed]
            steps_sorted = sorted(math.inf if s is None else s for s in reached)
            median_steps = _median(steps_sorted)
            best = _median([max(r.valid[d] for r in run) for run in per_seed])
            cells.append(f"{sum(s is not None for s in reached)}/{len(seeds)}, "
                         f"{'inf' if math.isinf(median_steps) else f'{median_steps:.0f}'}, {_pct(best)}")
        out.append(f"| {sub} | " + " | ".join(cells) + " |")
    out.append(f"\nThe knob's code path (eval_model_state, precise_bn_batches={batches}) vs `precise`, "
               f"largest validation-accuracy difference over the seeds' last evaluations: "
               f"{max(checks) if checks else float('nan'):.5f}.\n")
    out.append("Evaluation time, median of alternating rounds on the last seed's final state (s): "
               + "; ".join(f"{k}: {_median(v):.3f}" for k, v in timing.items()) + ".\n")
    out.append(f"\nWall time of the whole measurement: {wall / 60:.1f} min.\n")
    return "\n".join(out)


def _write_csv(rows: list[EvalRow], path: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["submission", "seed", "step", "train", *DEFINITIONS])
        for r in rows:
            w.writerow([r.submission, r.seed, r.step, f"{r.train:.6f}",
                        *(f"{r.valid[d]:.6f}" for d in DEFINITIONS)])


def _plot(rows: list[EvalRow], target: float, rho_t: float, batches: int, path: str) -> None:
    """Validation accuracy against the step, one panel per submission: each seed thin, the median
    thick, per definition (running averages, transposed momentum, precise BN), beside training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subs = list(dict.fromkeys(r.submission for r in rows))
    styles = {"train": ("train (train mode)", "0.5", ":"), "running": ("valid, running avg ρ=0.9", "C3", "-"),
              "transposed": (f"valid, running avg ρ'={rho_t:.3f}", "C1", "-"),
              "precise": (f"valid, precise BN K={batches}", "C0", "-")}
    columns = min(3, len(subs))
    grid_rows = math.ceil(len(subs) / columns)
    fig, axes = plt.subplots(grid_rows, columns, figsize=(4.2 * columns, 3.6 * grid_rows), sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(subs):]:
        ax.axis("off")
    for ax, sub in zip(axes.flat, subs):
        seeds = sorted({r.seed for r in rows if r.submission == sub})
        for key, (label, color, ls) in styles.items():
            curves = [[(r.step, r.train if key == "train" else r.valid[key])
                       for r in rows if r.submission == sub and r.seed == s] for s in seeds]
            for c in curves:
                ax.plot(*zip(*c), color=color, ls=ls, lw=0.6, alpha=0.45)
            steps = [s for s, _ in curves[0]]
            med = [_median([c[i][1] for c in curves]) for i in range(len(steps))]
            ax.plot(steps, med, color=color, ls=ls, lw=2, label=label)
        ax.axhline(target, color="k", lw=0.8, ls="--", label=f"target {100 * target:.1f}%")
        ax.set_title(f"{sub} ({len(seeds)} seeds)")
        ax.set_xlabel("step")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(loc="lower right", fontsize=7)
    fig.suptitle("fashion_mnist_resnet: validation accuracy with BN running averages vs precise BN\n"
                 "(thin: seeds, thick: median)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    cli.run(define_flags, main)
