"""Published numbers on the leaderboard of a full-scale workload.

On ImageNet and BERT (the full-scale workloads, which need data and hardware that are rarely at
hand) the papers' own results are the comparison a measured row wants. A leaderboard that scores
such a workload shows, in the workload's first section (its largest tuning budget), one extra row
per published metric about a submission on it, labelled ``published (<paper>, <table>)``, with the
printed number in the best-valid column and nothing else measured: never ranked, not in the
profiles or the paired comparisons (those take the board without them). Which published numbers
show is decided in ``shown_on_leaderboard`` alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from scoring import aggregate, published
from scoring.datafiles import PAPERS

#: Name prefixes of the full-scale workloads (workloads/__init__.py: imagenet_*, bert_*).
FULL_SCALE_PREFIXES: tuple[str, ...] = ("imagenet_", "bert_")


def is_full_scale(workload: str) -> bool:
    """Whether `workload` is a full-scale workload (ImageNet, BERT-Large), by its name."""
    return workload.startswith(FULL_SCALE_PREFIXES)


def shown_on_leaderboard(numbers: pd.DataFrame, workloads: Iterable[str]) -> pd.DataFrame:
    """The published numbers a leaderboard scoring `workloads` shows: results (quantity
    ``metric``) about a built-in submission on one of those workloads that is full scale."""
    scored = {w for w in workloads if is_full_scale(w)}
    keep = ((numbers["quantity"] == "metric") & numbers["workload"].isin(scored)
            & (numbers["submission"] != ""))
    return numbers[keep]


def label(paper: str, table: str) -> str:
    """``published (Nado et al. 2021, Table 1)``: a published row's label (its config column)."""
    return f"published ({PAPERS[paper]}, {table})"


def describe(number: Any) -> str:
    """What a published row is: the paper's row and column, the config reproducing it, the note."""
    parts = [" / ".join(p for p in (number.row, number.column) if p)]
    if number.config:
        parts.append(f"config {number.config}")
    if number.note:
        parts.append(number.note)
    return "; ".join(p for p in parts if p)


def leaderboard_rows(board: pd.DataFrame, numbers: pd.DataFrame) -> pd.DataFrame:
    """Leaderboard rows (``aggregate.LEADERBOARD_COLUMNS``) of the published `numbers`, each in the
    first section of its workload in `board` (batch size, metric, direction and target from its
    first row)."""
    firsts = board.groupby("workload", sort=False).head(1).set_index("workload")
    rows = []
    for n in numbers.itertuples():
        first = firsts.loc[n.workload]
        row: dict[str, Any] = {column: math.nan for column in aggregate.LEADERBOARD_COLUMNS}
        row.update(workload=n.workload, global_batch_size=int(first["global_batch_size"]),
                   tuning_budget=int(first["tuning_budget"]), rank=pd.NA,
                   submission=n.submission, config_id=label(n.paper, n.table), study_id=-1,
                   hparams=describe(n), metric=first["metric"], direction=first["direction"],
                   target=float(first["target"]), seeds=0, finished=0, reached="-", reached_count=0,
                   diverged=0, failed=0, interrupted=0, running=0, superseded=0,
                   published=published.format_value(n.value, n.unit))
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(aggregate.LEADERBOARD_COLUMNS))
    return out.astype({"rank": "Int64"})


def with_published(board: pd.DataFrame, directory: str | None = None) -> pd.DataFrame:
    """`board` followed by the rows of the published numbers it shows (``shown_on_leaderboard``) of
    the files in `directory` (default ``published.PUBLISHED_DIR``); `board` itself when it scores
    no full-scale workload (the files are not read then)."""
    workloads = list(board["workload"].unique())
    if board.empty or not any(is_full_scale(w) for w in workloads):
        return board
    rows = leaderboard_rows(board, shown_on_leaderboard(published.load(directory), workloads))
    if rows.empty:
        return board
    return pd.concat([board, rows], ignore_index=True)
