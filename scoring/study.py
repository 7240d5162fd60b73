"""A tuning study read back from the results database (harness/study.py writes it): its trials
table, the selection and the confirmation, and three plots.

``python -m scoring study --study=NAME [--results=DB] [--out=PREFIX]`` prints the table and writes

* ``PREFIX_hparams.png``: the best validation metric of every trial against each tuned
  hyperparameter (log axis where the search space's scaling is log; feasible points as their
  values), infeasible (diverged) trials marked at the bottom, the selected trial starred;
* ``PREFIX_best_so_far.png``: the best feasible metric so far against the number of trials;
* ``PREFIX_confirmation.png``: the selected point's best validation metric on each confirmation
  seed against the target (box and strip, as Nado et al. Fig. 4).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from harness.direction import Direction
from harness.errors import UserError
from harness.formatting import compact_pairs, format_metric, is_accuracy
from harness.store import ResultsReader
from scoring.render import fixed_width_table, write_file

FINISHED = ("completed", "diverged")


@dataclasses.dataclass(frozen=True)
class StudyReport:
    study: dict[str, Any]
    space: dict[str, Any]  # the search space, AlgoPerf format
    trials: pd.DataFrame  # trial, point (dict), seed, run_id, feasible, status, best_valid, steps_to_target
    confirmation: pd.DataFrame  # the latest finished run of each confirmation seed
    metric: str
    direction: Direction
    target: float

    @property
    def confirmation_median(self) -> float | None:
        """The median best validation metric over the confirmation seeds (None before one finished)."""
        values = self.confirmation["best_valid"].dropna()
        return float(values.median()) if len(values) else None

    @property
    def confirmation_reached(self) -> int:
        """How many confirmation seeds reached the target."""
        return int(self.confirmation["steps_to_target"].notna().sum())

    @property
    def selected(self) -> int | None:
        value = self.study.get("selected_trial")
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def load(results: str, name: str) -> StudyReport:
    with ResultsReader(results) as reader:
        study = reader.study(name)
        trials = reader.study_trials(int(study["study_id"]))
        confirmation = reader.study_runs(int(study["study_id"]), "confirmation")
    if trials.empty:
        raise UserError(f"study {name} has no finished trial yet; run its command (`{study['command']}`)")
    trials = trials.assign(point=[json.loads(p) for p in trials["point"]], feasible=trials["feasible"] == 1)
    finished = confirmation[confirmation["status"].isin(FINISHED)]
    latest = finished.sort_values("run_id").groupby("seed").tail(1).sort_values("seed")
    with ResultsReader(results) as reader:
        first_run = reader.run(int(trials["run_id"].iloc[0]))
    return StudyReport(study, json.loads(study["search_space"]), trials, latest, str(first_run["metric"]),
                       Direction(first_run["direction"]), float(first_run["target"]))


def summary(r: StudyReport) -> str:
    """The trials table, the selection and the confirmation, as fixed-width text."""
    fmt = lambda v: format_metric(v, r.metric)  # noqa: E731
    steps = lambda v: "inf" if v is None or math.isnan(v) else str(int(v))  # noqa: E731
    s = r.study
    lines = [f"study {s['name']}: {s['submission']} on {s['workload']}, search space {s['search_space_hash']} "
             f"({', '.join(sorted(r.space))}), study seed {int(s['study_seed'])}, select {s['select_rule']}, "
             f"status {s['status']}",
             f"  {int(r.trials['feasible'].sum())} feasible of {len(r.trials)} trials (wanted "
             f"{int(s['trials'])}, at most {int(s['max_trials'])}); compile {s['compile_seconds']:.0f} s of "
             f"{s['wall_seconds']:.0f} s wall ({100 * s['compile_seconds'] / max(s['wall_seconds'], 1e-9):.1f}%)",
             f"  command: {s['command']}", ""]
    rows = [[str(int(t.trial) + 1) + ("*" if r.selected == int(t.trial) else ""), str(int(t.seed)),
             "yes" if t.feasible else "no", fmt(t.best_valid), steps(t.steps_to_target), compact_pairs(t.point)]
            for t in r.trials.itertuples()]
    lines += fixed_width_table(("trial", "seed", "feasible", "best valid", "steps", "point"), rows, ">>>>><",
                               shrinkable=(5,), width=160)
    if r.selected is not None:
        lines.append(f"* selected (by {s['select_rule']})")
    c = r.confirmation
    if not c.empty:
        median, reached = r.confirmation_median, r.confirmation_reached
        meets = median is not None and r.direction.reached(median, r.target)
        lines.append(f"confirmation: {len(c)} of {int(s['confirm_seeds'])} seeds; median best valid "
                     f"{fmt(median)}, target {fmt(r.target)} reached by {reached}/{len(c)}; the median "
                     f"{'meets' if meets else 'misses'} the target")
    return "\n".join(lines) + "\n"


def _png(fig: Any, r: StudyReport) -> bytes:
    """The figure as PNG bytes, accuracies on percent axes (as the leaderboard's curves)."""
    if is_accuracy(r.metric):
        from matplotlib.ticker import PercentFormatter

        for ax in fig.axes:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def hparams_png(r: StudyReport) -> bytes:
    """Best validation metric of each trial against each tuned hyperparameter."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    names = sorted(r.space)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    feasible, infeasible = r.trials[r.trials["feasible"]], r.trials[~r.trials["feasible"]]
    finite = feasible["best_valid"].dropna()
    floor = float(finite.min()) if len(finite) else 0.0
    for ax, name in zip(axes, names):
        dim = r.space[name]
        points = dim.get("feasible_points")
        def x(df: pd.DataFrame, name: str = name, points: Any = points) -> list[float]:
            values = [p[name] for p in df["point"]]
            return [points.index(v) for v in values] if points is not None else values
        ax.scatter(x(feasible), feasible["best_valid"], s=22, label="feasible")
        if not infeasible.empty:
            ax.scatter(x(infeasible), [floor] * len(infeasible), marker="x", color="red", label="diverged")
        chosen = r.trials[r.trials["trial"] == r.selected] if r.selected is not None else r.trials[:0]
        if not chosen.empty:
            ax.scatter(x(chosen), chosen["best_valid"], marker="*", s=180, color="gold", edgecolor="black",
                       label="selected", zorder=3)
        ax.axhline(r.target, color="black", linestyle="--", linewidth=1, label="target")
        if points is not None:
            ax.set_xticks(range(len(points)), [str(p) for p in points])
        elif dim.get("scaling") == "log":
            ax.set_xscale("log")
        ax.set(xlabel=name, ylabel=f"best valid {r.metric}")
        ax.grid(True, alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    axes[0].legend(fontsize="x-small")
    fig.suptitle(f"study {r.study['name']}: best valid {r.metric} of each trial", fontsize="medium")
    return _png(fig, r)


def best_so_far_png(r: StudyReport) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    n = np.arange(1, len(r.trials) + 1)
    values = np.where(r.trials["feasible"], r.trials["best_valid"].astype(float), np.nan)
    best, running = [], math.nan
    for v in values:
        if not math.isnan(v) and (math.isnan(running) or r.direction.better(v, running)):
            running = v
        best.append(running)
    ax.step(n, best, where="post", label="best feasible so far")
    ax.scatter(n, values, s=14, alpha=0.6, label="trial")
    ax.axhline(r.target, color="black", linestyle="--", linewidth=1, label="target")
    ax.set(xlabel="trials", ylabel=f"best valid {r.metric}")
    ax.set_title(f"study {r.study['name']}", fontsize="small")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig, r)


def confirmation_png(r: StudyReport) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.2), layout="constrained")
    ax = fig.subplots()
    values = r.confirmation["best_valid"].dropna().to_numpy(float)
    if len(values):
        ax.boxplot(values, widths=0.4)
        jitter = np.random.default_rng(0).uniform(-0.12, 0.12, len(values))
        ax.scatter(1 + jitter, values, s=16, alpha=0.7, zorder=3)
    ax.axhline(r.target, color="black", linestyle="--", linewidth=1,
               label=f"target {format_metric(r.target, r.metric)}")
    reached = int(r.confirmation["steps_to_target"].notna().sum())
    ax.set(xticks=[1], xticklabels=[f"{len(values)} seeds, {reached} reached the target"],
           ylabel=f"best valid {r.metric}")
    ax.set_title(f"study {r.study['name']}\nthe selected point on the confirmation seeds", fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig, r)


def write_plots(r: StudyReport, out: str) -> list[str]:
    """Write the three PNGs (module docstring) under the prefix `out`; returns their paths."""
    paths = []
    for suffix, make in (("hparams", hparams_png), ("best_so_far", best_so_far_png)):
        paths.append(write_file(f"{out}_{suffix}.png", make(r)))
    if not r.confirmation.empty:
        paths.append(write_file(f"{out}_confirmation.png", confirmation_png(r)))
    return paths


def default_prefix(name: str) -> str:
    return "results/study_" + re.sub(r"[^A-Za-z0-9_.@-]+", "_", name)
