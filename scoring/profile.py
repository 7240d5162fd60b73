"""Performance profiles and the benchmark score across workloads (AlgoPerf's scoring).

From the AlgoPerf rules (mlcommons/algorithmic-efficiency, docs/DOCUMENTATION.md, "AlgoPerf
Benchmark Score via Integrated Performance Profiles", after Dolan & Moré 2002): for submission s
and workload w with time to target t_{s,w} (inf for a miss),

    r_{s,w}   = t_{s,w} / min_s' t_{s',w}                       the performance ratio, in [1, inf]
    rho_s(tau) = |{w : r_{s,w} <= tau}| / n                      the performance profile
    B_s       = 1 / (r_max - 1) * integral_1^r_max rho_s(tau) dtau,   r_max = 4   the benchmark score

(B_s in [0, 1]; 1: the fastest on every workload). Here the time is a row's median over seeds of
the steps to target (or, with --time=seconds, of the training seconds to target), a miss counting
as inf; a workload no submission solved gives every submission r = inf. The integral of the step
function rho_s is computed exactly: B_s = 1/n sum_w max(0, r_max - r_{s,w}) / (r_max - 1) (AlgoPerf's
code approximates it with the trapezoid rule on a grid of tau).

Which row represents a submission on a workload: its tuned study's row if it has one (the largest
tuning budget), else a named config's row (``config=...``), else its best-ranked row; the output
says which. Only ranked rows take part (scoring/aggregate.py: a row without a finished seed has no
rank): a submission or workload whose runs are all in progress is left out until one finishes, and a
submission with a workload still in progress counts it as a miss for now.
"""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pandas as pd

from scoring import aggregate

#: r_max of the AlgoPerf rules: the upper limit of the integral and of the profile plot.
TAU_MAX = 4.0
TIME_COLUMNS = {"steps": "median_steps", "seconds": "median_seconds_to_target"}
NOT_RUN = "not run (a miss)"
IN_PROGRESS = "no finished seed yet (a miss for now)"


@dataclasses.dataclass(frozen=True)
class Profile:
    times: pd.DataFrame  # submission x workload: median time to target (inf: missed)
    chosen: pd.DataFrame  # submission x workload: which row stands for the submission there
    ratios: pd.DataFrame  # submission x workload: r_{s,w}
    scores: pd.Series  # submission -> B_s
    time: str  # "steps" | "seconds"
    tau_max: float

    def rho(self, taus: np.ndarray) -> pd.DataFrame:
        """submission x tau: the fraction of workloads with r <= tau."""
        return pd.DataFrame({tau: (self.ratios <= tau).mean(axis=1) for tau in taus}, index=self.ratios.index)


def representative(rows: pd.DataFrame) -> tuple[pd.Series, str]:
    """The row standing for one submission on one workload, and how it was chosen (module doc)."""
    tuned = rows[rows["tuning_budget"] > 0]
    if not tuned.empty:
        best = tuned.sort_values(["tuning_budget", "rank"], ascending=[False, True]).iloc[0]
        return best, f"tuned study ({int(best['tuning_budget'])} feasible trials) [{best['config_id']}]"
    named = rows[rows["hparams"].str.startswith("config=")]
    if not named.empty:
        best = named.sort_values("rank").iloc[0]
        return best, f"named {best['hparams'].split()[0]} [{best['config_id']}]"
    best = rows.sort_values("rank").iloc[0]
    return best, f"best-ranked row [{best['config_id']}]"


def ratios(times: pd.DataFrame) -> pd.DataFrame:
    """r_{s,w} = t_{s,w} / min_s t_{s,w}; inf where t is inf, and for everyone where nobody finished."""
    best = times.min(axis=0)
    out = times.div(best, axis=1)
    out.loc[:, ~np.isfinite(best.to_numpy())] = np.inf
    return out.fillna(np.inf)


def benchmark_score(r: pd.DataFrame, tau_max: float = TAU_MAX) -> pd.Series:
    """B_s, the exact integral of the profile's step function (module docstring)."""
    clipped = (tau_max - r.clip(lower=1.0)).clip(lower=0.0)
    return clipped.mean(axis=1) / (tau_max - 1.0)


def build(board: pd.DataFrame, time: str = "steps", tau_max: float = TAU_MAX) -> Profile:
    """The profile of every submission over every workload of the leaderboard `board` that has a
    ranked row (module docstring)."""
    column = TIME_COLUMNS[time]
    board = board.assign(workload=aggregate.workload_labels(board))  # each batch size its own problem
    ranked = board[board["rank"].notna()]
    workloads = sorted(ranked["workload"].unique())
    submissions = sorted(ranked["submission"].unique())
    times = pd.DataFrame(np.inf, index=submissions, columns=workloads)
    chosen = pd.DataFrame(NOT_RUN, index=submissions, columns=workloads)
    for (submission, workload), rows in board.groupby(["submission", "workload"]):
        if submission not in times.index or workload not in times.columns:
            continue
        rows = rows[rows["rank"].notna()]
        if rows.empty:
            chosen.loc[submission, workload] = IN_PROGRESS
            continue
        row, how = representative(rows)
        value = float(row[column])
        times.loc[submission, workload] = np.inf if math.isnan(value) else value
        chosen.loc[submission, workload] = how
    r = ratios(times)
    return Profile(times, chosen, r, benchmark_score(r, tau_max), time, tau_max)


def table(p: Profile) -> str:
    """Per submission: its score, and per workload the time, the ratio and the row that stands for it."""
    lines = [f"benchmark score B (AlgoPerf, r_max = {p.tau_max:g}) over {p.ratios.shape[1]} workload(s), time = "
             f"median {p.time} to target:"]
    for s in p.scores.sort_values(ascending=False).index:
        lines.append(f"  {s}: B = {p.scores[s]:.3f}")
        for w in p.ratios.columns:
            t, r = p.times.loc[s, w], p.ratios.loc[s, w]
            shown = "inf" if math.isinf(t) else (f"{t:.0f}" if p.time == "steps" else f"{t:.1f} s")
            lines.append(f"      {w}: {shown} (r = {'inf' if math.isinf(r) else f'{r:.2f}'}) from "
                         f"{p.chosen.loc[s, w]}")
    return "\n".join(lines) + "\n"


def profile_png(p: Profile) -> bytes:
    """rho_s(tau) for tau in [1, tau_max], one step line per submission."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    taus = np.linspace(1.0, p.tau_max, 301)
    rho = p.rho(taus)
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    ax = fig.subplots()
    for s in p.scores.sort_values(ascending=False).index:
        ax.step(taus, rho.loc[s].to_numpy(), where="post", label=f"{s} (B = {p.scores[s]:.3f})")
    ax.set(xlim=(1.0, p.tau_max), ylim=(-0.02, 1.02), xlabel="tau (time / best time)",
           ylabel="fraction of workloads within tau", title=f"performance profiles ({p.ratios.shape[1]} "
           f"workload(s), median {p.time} to target)")
    ax.grid(True, alpha=0.3)
    fig.legend(fontsize="small", loc="outside right upper")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
