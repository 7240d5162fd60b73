"""Two leaderboard rows compared seed by seed.

Seed s gives every submission the same initialisation, data order and dropout stream (the harness
derives all of them from the seed alone), so two rows' runs of seed s differ only by the optimizer:
a paired comparison. Over the seeds both rows have (the latest attempt of each, as the leaderboard
counts them), it reports per seed the difference of the best validation metric and of the steps to
target (a miss is inf), the head-to-head counts (a better on k of n seeds; a faster on k of the
seeds where one of them reached the target first), a sign test and a Wilcoxon signed-rank p-value
of the best-validation differences, a sign test of who reached the target first, and a paired plot
with one line per seed.

``python -m scoring compare --workload=W --a=ROW --b=ROW [--results=DB] [--out=PNG]``; ROW is a
config id (or a unique prefix of one) or ``submission`` or ``submission:config`` (a named config's
name, or a config id), naming one leaderboard row of W.
"""

from __future__ import annotations

import dataclasses
import io
import math
from typing import Any

import numpy as np
import pandas as pd

from harness.direction import Direction
from harness.errors import UserError
from harness.formatting import format_metric, is_accuracy
from scoring import aggregate, statistics


@dataclasses.dataclass(frozen=True)
class Comparison:
    workload: str
    a: str  # labels: "submission [config id]"
    b: str
    metric: str
    direction: Direction
    seeds: list[int]
    a_valid: list[float]  # per seed; NaN where the latest attempt did not finish
    b_valid: list[float]
    a_steps: list[float]  # per seed; inf for a miss
    b_steps: list[float]

    @property
    def valid_differences(self) -> list[float]:
        """a - b per seed, signed so that > 0 means a is better (minimised metrics flipped)."""
        sign = 1.0 if self.direction is Direction.MAXIMIZE else -1.0
        return [sign * (a - b) for a, b in zip(self.a_valid, self.b_valid)]

    @property
    def a_better(self) -> tuple[int, int]:
        """(seeds where a's best validation metric is better, seeds where they differ)."""
        d = [x for x in self.valid_differences if not math.isnan(x) and x != 0]
        return sum(x > 0 for x in d), len(d)

    @property
    def a_faster(self) -> tuple[int, int]:
        """(seeds where a reached the target in fewer steps, seeds where one was faster)."""
        pairs = [(a, b) for a, b in zip(self.a_steps, self.b_steps) if a != b]
        return sum(a < b for a, b in pairs), len(pairs)

    @property
    def steps_sign_p(self) -> float:
        wins, n = self.a_faster
        return statistics.sign_test([1.0] * wins + [-1.0] * (n - wins))


def select_row(board: pd.DataFrame, workload: str, spec: str) -> pd.Series:
    """The one leaderboard row of `workload` named by `spec` (module docstring); UserError listing
    the rows when it names none or several."""
    rows = board[board["workload"] == workload]
    if rows.empty:
        present = ", ".join(sorted(board["workload"].unique()))
        raise UserError(f"no rows of workload {workload!r}; workloads: {present}")
    submission, _, config = spec.partition(":")
    if not config and rows["config_id"].str.startswith(spec).any() and spec not in set(rows["submission"]):
        match = rows[rows["config_id"].str.startswith(spec)]
    else:
        match = rows[rows["submission"] == submission]
        if config:
            named = match["hparams"].str.startswith(f"config={config}")
            match = match[named | match["config_id"].str.startswith(config)]
    if len(match) != 1:
        listing = "; ".join(f"{r.submission}:{r.config_id} ({r.hparams})" for r in rows.itertuples())
        what = "no row" if match.empty else f"{len(match)} rows"
        raise UserError(f"{spec!r} names {what} of {workload}; name one by config id or submission:config "
                        f"from: {listing}")
    return match.iloc[0]


def _per_seed(runs: pd.DataFrame) -> pd.DataFrame:
    """seed -> (best valid, steps to target) of a row's latest attempts; unfinished ones miss."""
    latest = aggregate.latest_attempts(runs)
    latest = latest[latest["status"] != "running"]
    finished = latest["status"].isin(aggregate.FINISHED_STATUSES)
    return pd.DataFrame({"seed": latest["seed"].astype(int),
                         "valid": latest["best_valid"].where(finished, np.nan).astype(float),
                         "steps": aggregate.misses_as_inf(latest["steps_to_target"].where(finished, np.nan))}
                        ).set_index("seed")


def compare(runs: pd.DataFrame, board: pd.DataFrame, workload: str, a: str, b: str) -> Comparison:
    """Rows `a` and `b` of `workload` (select_row) on the seeds both have."""
    rows = [select_row(board, workload, spec) for spec in (a, b)]
    if rows[0]["config_id"] == rows[1]["config_id"] and rows[0]["study_id"] == rows[1]["study_id"]:
        raise UserError(f"{a!r} and {b!r} name the same row; compare two different rows")
    result = between(runs, rows[0], rows[1])
    if result is None:
        raise UserError(f"the rows {a!r} and {b!r} share no seed; run both with the same --seeds")
    return result


def between(runs: pd.DataFrame, a: Any, b: Any) -> Comparison | None:
    """Leaderboard rows `a` and `b` (records with workload, submission, config_id, study_id, metric,
    direction) on the seeds both have; None when they share none."""
    runs = aggregate.with_study_ids(runs)
    sides = []
    for r in (a, b):
        mine = runs[(runs["workload"] == r["workload"]) & (runs["config_id"] == r["config_id"])
                    & (runs["study_id"] == r["study_id"])]
        sides.append(_per_seed(mine))
    seeds = sorted(set(sides[0].index) & set(sides[1].index))
    if not seeds:
        return None
    pa, pb = (s.loc[seeds] for s in sides)
    label = lambda r: f"{r['submission']} [{r['config_id']}]"  # noqa: E731
    return Comparison(str(a["workload"]), label(a), label(b), str(a["metric"]), Direction(a["direction"]),
                      seeds, pa["valid"].tolist(), pb["valid"].tolist(), pa["steps"].tolist(),
                      pb["steps"].tolist())


def _steps(v: float) -> str:
    return "inf" if math.isinf(v) else str(int(v))


def _seeds(c: Comparison) -> str:
    return f"{len(c.seeds)} paired seed" + ("" if len(c.seeds) == 1 else "s")


def summary(c: Comparison) -> str:
    fmt = lambda v: format_metric(v, c.metric)  # noqa: E731
    better, differ = c.a_better
    faster, decided = c.a_faster
    d = c.valid_differences
    lines = [f"{c.workload}: a = {c.a}, b = {c.b}; {_seeds(c)}", "",
             f"{'seed':>6} {'a best valid':>13} {'b best valid':>13} {'a - b':>10} {'a steps':>8} {'b steps':>8}"]
    for s, av, bv, diff, ast, bst in zip(c.seeds, c.a_valid, c.b_valid, d, c.a_steps, c.b_steps):
        shown = "-" if math.isnan(diff) else (f"{100 * diff:+.2f}pp" if is_accuracy(c.metric) else f"{diff:+.4f}")
        lines.append(f"{s:>6} {fmt(av):>13} {fmt(bv):>13} {shown:>10} {_steps(ast):>8} {_steps(bst):>8}")
    lines += ["",
              f"best valid: a better on {better} of {differ} seeds that differ; sign test p = "
              f"{statistics.sign_test(d):.3g}, Wilcoxon signed-rank p = {statistics.wilcoxon_test(d):.3g}",
              f"steps to target: a faster on {faster} of {decided} seeds where one was faster; sign test "
              f"p = {c.steps_sign_p:.3g}"]
    if len(c.seeds) < statistics.FEW_SEEDS:
        lines.append(f"only {_seeds(c)}: the tests have little power; a p-value above 0.05 "
                     "is not evidence that the rows are equal")
    return "\n".join(lines) + "\n"


def paired_png(c: Comparison) -> bytes:
    """Best validation metric and steps to target per seed, a and b joined by one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.2), layout="constrained")
    ax_valid, ax_steps = fig.subplots(1, 2)
    finite = [v for v in c.a_steps + c.b_steps if math.isfinite(v)]
    ceiling = 1.1 * max(finite) if finite else 1.0  # misses drawn above every finite value
    for av, bv, ast, bst in zip(c.a_valid, c.b_valid, c.a_steps, c.b_steps):
        ax_valid.plot([0, 1], [av, bv], marker="o", color="tab:blue", alpha=0.6)
        ax_steps.plot([0, 1], [ast if math.isfinite(ast) else ceiling, bst if math.isfinite(bst) else ceiling],
                      marker="o", color="tab:orange", alpha=0.6)
    ax_steps.axhline(ceiling, color="gray", linestyle=":", linewidth=1)
    ax_steps.text(0.5, ceiling, "missed", ha="center", va="bottom", fontsize="small", color="gray")
    for ax, ylabel in ((ax_valid, f"best valid {c.metric}"), (ax_steps, "steps to target")):
        ax.set_xticks([0, 1], [f"a: {c.a}", f"b: {c.b}"], fontsize="small")
        ax.set_xlim(-0.3, 1.3)
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="y", alpha=0.3)
    if is_accuracy(c.metric):
        from matplotlib.ticker import PercentFormatter

        ax_valid.yaxis.set_major_formatter(PercentFormatter(1.0))
    fig.suptitle(f"{c.workload}: {_seeds(c)} (one line per seed)", fontsize="medium")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def row_key(row: Any) -> str:
    """An id of a leaderboard row, unique in the leaderboard (HTML anchors)."""
    return f"{row['workload']}-{row['config_id']}-{int(row['study_id'])}"


def with_rows_above(runs: pd.DataFrame, board: pd.DataFrame) -> dict[str, Comparison]:
    """row_key(row) -> the comparison of each row with the row ranked just above it in its section
    of the leaderboard (same workload, batch size and tuning budget), where they share seeds: what
    the HTML leaderboard links. Rows without a rank (no finished seed yet) are compared with nothing."""
    out = {}
    for _, rows in board[board["rank"].notna()].groupby(list(aggregate.SECTION_KEYS), sort=False):
        ordered = rows.sort_values("rank").to_dict("records")
        for above, row in zip(ordered, ordered[1:]):
            result = between(runs, row, above)
            if result is not None:
                out[row_key(row)] = result
    return out
