"""Steps to target against the global batch size, per submission (Shallue et al. 2019, "Measuring
the effects of data parallelism on neural network training", Fig. 1: steps to result vs batch size,
log-log, with the line of perfect scaling).

``python -m scoring scaling --workload=W [--results=DB] [--out=PNG]``

Series. The leaderboard (scoring/aggregate.py) has one row per config id, and a batch-size variant
(``harness run --batch_size=B``) is a row of its own; a series is the rows of one submission (its
code) and one configuration at several batch sizes. The configuration is what the leaderboard says
of a row (`aggregate.describe_config`: the named config and what was set on top, else the hparams
and knobs the user set, a declared lr_scaling rule included), and for a tuning study's row its
protocol (trials, search space, selection rule), so a series' rows differ only by their batch and
what follows from it (steps, learning rates under a declared rule). A series with several rows at
one batch (a full run and a --budget smoke test, say) plots the one with the largest step budget;
the table lists the others as not plotted.

Each point is a row's median steps to target over its seeds (a seed that missed counts as inf, so
the median is a miss when at least half the seeds missed). Perfect scaling: steps x batch constant,
the steps halving when the batch doubles, drawn per series through its smallest batch's point (the
smallest that reached the target, if that one missed); the table's `efficiency` is that ideal over
the measured median (1: perfect). A miss is drawn as a hollow triangle on the plot's top edge.
"""

from __future__ import annotations

import dataclasses
import io
import math
import textwrap
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.formatting import format_metric
from harness.store import ResultsReader
from scoring import aggregate, render

#: The fixed-width table's columns.
TABLE_HEADERS = ("series", "batch", "config", "budget", "seeds", "reached", "median steps", "perfect",
                 "efficiency")


@dataclasses.dataclass(frozen=True)
class Scaling:
    """The points of every series of one workload (columns of `points`: series, submission,
    global_batch_size, config_id, step_budget, seeds, reached, median_steps, plotted, perfect,
    efficiency)."""

    workload: str
    metric: str
    targets: Mapping[int, float]  # batch size -> target (a variant may have its own, workloads/targets.py)
    points: pd.DataFrame

    def describe_target(self) -> str:
        """'accuracy 83.80%', or per batch size where the targets differ."""
        values = set(self.targets.values())
        if len(values) == 1:
            return f"{self.metric} {format_metric(values.pop(), self.metric)}"
        return f"{self.metric} " + ", ".join(f"{format_metric(t, self.metric)} at {b}"
                                               for b, t in sorted(self.targets.items()))


def series_description(row: Mapping[str, Any], studies: Mapping[int, Mapping[str, Any]]) -> str:
    """What a row's series shares across batch sizes (module docstring): a study's protocol, else
    the leaderboard's description of the row."""
    study = studies.get(int(row["study_id"]))
    if study is None:
        return str(row["hparams"])
    return (f"tuned: {int(study['trials'])} feasible trials, search space {study['search_space_hash']}, "
            f"select {study['select_rule']}")


def _row_facts(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (config id, study): the step budget and the submission's code hash of its runs."""
    runs = aggregate.with_study_ids(runs)
    code = runs["submission_hash"].fillna("") if "submission_hash" in runs else pd.Series("", index=runs.index)
    facts = runs.assign(code=code).groupby(["config_id", "study_id"], sort=False).agg(
        step_budget=("step_budget", "max"), code=("code", "first"))
    return facts.reset_index()


def _labels(points: pd.DataFrame) -> pd.Series:
    """`submission description`, with the code hash where one label would name two codes."""
    base = points["submission"] + " " + points["description"]
    codes = points.groupby(base)["code"].transform("nunique")
    return base.where(codes <= 1, base + " (code " + points["code"].str[:8] + ")")


def _perfect(series: pd.DataFrame) -> pd.DataFrame:
    """`perfect` (ideal steps from the smallest batch that reached the target) and `efficiency` of
    one series' plotted points, sorted by batch."""
    plotted = series[series["plotted"]].sort_values("global_batch_size")
    anchor = plotted[np.isfinite(plotted["median_steps"].to_numpy(dtype=float))].head(1)
    if anchor.empty:
        return series.assign(perfect=math.nan, efficiency=math.nan)
    constant = float(anchor["median_steps"].iloc[0]) * float(anchor["global_batch_size"].iloc[0])
    perfect = (constant / series["global_batch_size"].astype(float)).where(series["plotted"])
    measured = series["median_steps"].astype(float)
    efficiency = (perfect / measured).where(series["plotted"] & np.isfinite(measured))  # a miss has none
    return series.assign(perfect=perfect, efficiency=efficiency)


def build(runs: pd.DataFrame, studies: pd.DataFrame, workload: str) -> Scaling:
    """The series of `workload` from the runs and studies of a results database."""
    runs = aggregate.select_workload(runs, workload)
    board = aggregate.leaderboard(runs, studies)
    board = board[board["finished"] > 0]
    if board.empty:
        raise UserError(f"no leaderboard row of {workload} has a finished seed yet (runs still running, "
                        "interrupted or failed): nothing to plot until one completes")
    by_id = {int(s["study_id"]): s for s in studies.to_dict("records")} if not studies.empty else {}
    points = board.merge(_row_facts(runs), on=["config_id", "study_id"], how="left")
    points["description"] = [series_description(r, by_id) for r in points.to_dict("records")]
    points["series"] = _labels(points)
    # per series and batch the row with the largest step budget (then the first config id)
    ordered = points.sort_values(["series", "global_batch_size", "step_budget", "config_id"],
                                 ascending=[True, True, False, True])
    chosen = ordered.drop_duplicates(["series", "global_batch_size"])
    points["plotted"] = points.index.isin(chosen.index)
    points = pd.concat([_perfect(group) for _, group in points.groupby("series", sort=True)])
    points = points.sort_values(["series", "global_batch_size", "plotted"], ascending=[True, True, False])
    targets = {int(b): float(t) for b, t in zip(board["global_batch_size"], board["target"])}
    columns = ["series", "submission", "global_batch_size", "config_id", "step_budget", "seeds", "reached",
               "median_steps", "plotted", "perfect", "efficiency"]
    return Scaling(workload, str(board["metric"].iloc[0]), targets, points[columns].reset_index(drop=True))


def load(results: str, workload: str) -> Scaling:
    """build() from the database at `results` (read only)."""
    with ResultsReader(results) as reader:
        return build(reader.runs(), reader.studies(), workload)


def _efficiency(plotted: bool, median: float, efficiency: float) -> str:
    """The efficiency cell: 'miss' for a median that missed the target, '-' for no value."""
    if plotted and math.isinf(median):
        return "miss"
    return "-" if not plotted or math.isnan(efficiency) else f"{efficiency:.2f}"


def table(s: Scaling, width: int = render.TERMINAL_WIDTH) -> str:
    """The points as a fixed-width table, one line per row, a series' rows together by batch."""
    cells = [(str(r.series), str(int(r.global_batch_size)), str(r.config_id), str(int(r.step_budget)),
              str(r.seeds), str(r.reached), render.format_steps(r.median_steps),
              render.format_steps(r.perfect) if r.plotted else "not plotted",
              _efficiency(r.plotted, r.median_steps, r.efficiency))
             for r in s.points.itertuples()]
    lines = [f"{s.workload}: median steps to target ({s.describe_target()}) by "
             "global batch size; perfect = steps of perfect scaling from the series' smallest batch that reached "
             "the target, efficiency = perfect / median"]
    lines.extend(render.fixed_width_table(TABLE_HEADERS, cells, "<><>>>>>>", shrinkable=(0,), width=width))
    return "\n".join(textwrap.wrap(lines[0], width) + lines[1:]) + "\n"


def png(s: Scaling) -> bytes:
    """The log-log plot (module docstring): one colour per series, its perfect-scaling line dashed."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    plotted = s.points[s.points["plotted"]]
    finite = plotted["median_steps"].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    ideal = plotted["perfect"].to_numpy(dtype=float)
    values = np.concatenate([finite, ideal[np.isfinite(ideal)]])
    low, high = (values.min() / 1.5, values.max() * 2.0) if values.size else (1.0, 10.0)
    fig = Figure(figsize=(8.5, 5), layout="constrained")
    ax = fig.subplots()
    cycle = matplotlib.colormaps["tab10"]
    for k, (label, series) in enumerate(plotted.groupby("series", sort=True)):
        color = cycle(k % cycle.N)
        series = series.sort_values("global_batch_size")
        batch = series["global_batch_size"].to_numpy(dtype=float)
        steps = series["median_steps"].to_numpy(dtype=float)
        reached = np.isfinite(steps)
        ax.plot(batch[reached], steps[reached], "o-", color=color, label=str(label))
        if (~reached).any():
            ax.plot(batch[~reached], np.full((~reached).sum(), high), "^", color=color, markerfacecolor="none",
                    markersize=10, clip_on=False, label=f"{label}: missed (median inf)")
        perfect = series["perfect"].to_numpy(dtype=float)
        if np.isfinite(perfect).any():
            ax.plot(batch, perfect, "--", color=color, alpha=0.6, linewidth=1)
    ax.plot([], [], "--", color="grey", label="perfect scaling (steps halve as the batch doubles)")
    ax.set_xscale("log", base=2)
    batches = sorted(int(b) for b in plotted["global_batch_size"].unique())
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    ax.set(xlabel="global batch size", ylabel="median steps to target",
           title=f"{s.workload}: steps to {s.describe_target()}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()
