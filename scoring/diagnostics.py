"""Per-group grafting ratios of one run over steps (Agarwal et al. Figures 5-6), from the database.

``python -m scoring diagnostics --run=RUN_ID [--results=DB] [--out=PNG]``: one line per group of
||s_M|| / ||s_D|| against the step, log scale.
"""

from __future__ import annotations

import io
import math

import pandas as pd

from harness.errors import UserError
from harness.store import ResultsReader


def load(results: str, run_id: int) -> tuple[pd.DataFrame, str]:
    """(DataFrame step, name, value of the run's diagnostics; a title) from the database."""
    with ResultsReader(results) as reader:
        run = reader.run(run_id)
        df = reader.diagnostics(run_id)
    if df.empty:
        raise UserError(f"run {run_id} has no recorded diagnostics; run a grafted submission "
                        "(e.g. --submission=adamw#sgd) with --diagnostics_every=K > 0")
    return df, f"run {run_id}: {run['workload']} {run['submission']} seed {int(run['seed'])}"


def ratio_png(df: pd.DataFrame, title: str) -> bytes:
    """PNG bytes: each diagnostic (ratio per group) against the step, log y axis."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    names = sorted(df["name"].unique())
    many = len(names) > 12
    # Many groups (a layer-wise partition): the legend goes outside, right of the axes, and the 20
    # colours of tab20 repeat with a new line style, so that every group stays identifiable.
    fig = Figure(figsize=(14 if many else 10, 6 if many else 5), layout="constrained")
    ax = fig.subplots()
    cmap = matplotlib.colormaps["tab20"]
    colors = [cmap(i) for i in range(cmap.N)]
    styles = ("-", "--", ":", "-.")
    for i, name in enumerate(names):
        d = df[df["name"] == name]
        ax.plot(d["step"], d["value"].astype(float), marker="." if len(d) < 30 else None,
                color=colors[i % len(colors)], linestyle=styles[i // len(colors) % len(styles)],
                linewidth=1.2, label=name.removeprefix("ratio/"))
    ax.set_yscale("log")
    ax.set(title=f"{title}: ||step M|| / ||step D|| per group", xlabel="step", ylabel="ratio")
    ax.grid(True, alpha=0.3)
    if many:
        fig.legend(fontsize="x-small", ncol=math.ceil(len(names) / 24), loc="outside right upper")
    else:
        ax.legend(fontsize="x-small", loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def write_png(results: str, run_id: int, out: str) -> str:
    df, title = load(results, run_id)
    try:
        with open(out, "wb") as f:
            f.write(ratio_png(df, title))
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}; pass --out=WRITABLE.png") from None
    return out
