"""Published numbers on the leaderboard of a full-scale workload.

On ImageNet and BERT (the full-scale workloads, which need data and hardware that are rarely at
hand) the papers' own results are the comparison a measured row wants. A leaderboard that scores
such a workload shows, in the workload's first section (its largest tuning budget), one extra row
per published result about a submission on it *of the metric the workload measures* (the data
declare each number's metric: reference_results/published/README.md), labelled
``published (<paper>, <table>)``, with the printed number in the best-valid column and nothing else
measured: never ranked, not in the profiles or the paired comparisons (those take the board without
them). Results of other metrics about the same workloads (SQuAD F1, training accuracy, a loss) are
left out and counted in a footnote that names the command printing them. Which published numbers
show is decided in ``shown_on_leaderboard`` alone, from ``WORKLOAD_METRICS``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from scoring import aggregate, published
from scoring.datafiles import PAPERS

#: The full-scale workloads (workloads/__init__.py: ImageNet, BERT-Large) and the published metric
#: (``published.METRICS``) each one measures: what its best-valid column holds. ImageNet: top-1 on
#: the official 50,000 validation images; BERT: masked-LM accuracy on held-out sequence-512 records
#: after both phases (workloads/bert.py), which none of the papers reports (they report SQuAD F1).
WORKLOAD_METRICS: dict[str, str] = {
    "imagenet_resnet50": "valid_top1",
    "imagenet_resnet50_cosine6000": "valid_top1",
    "imagenet_resnet50_90epochs": "valid_top1",
    "bert_large_32k": "mlm_accuracy_seq512",
    "bert_large_65k_32k": "mlm_accuracy_seq512",
    "bert_large_65k": "mlm_accuracy_seq512",
}


def is_full_scale(workload: str) -> bool:
    """Whether `workload` is a full-scale workload (ImageNet, BERT-Large): one of ``WORKLOAD_METRICS``."""
    return workload in WORKLOAD_METRICS


def candidates(numbers: pd.DataFrame, workloads: Iterable[str]) -> pd.DataFrame:
    """The published results (quantity ``metric``) about a built-in submission on one of
    `workloads` that is full scale, of any metric: what a leaderboard of them could show."""
    scored = {w for w in workloads if is_full_scale(w)}
    keep = ((numbers["quantity"] == "metric") & numbers["workload"].isin(scored)
            & (numbers["submission"] != ""))
    return numbers[keep]


def shown_on_leaderboard(numbers: pd.DataFrame, workloads: Iterable[str]) -> pd.DataFrame:
    """The published numbers a leaderboard scoring `workloads` shows: the ``candidates`` whose
    metric is the one their workload measures (``WORKLOAD_METRICS``)."""
    found = candidates(numbers, workloads)
    return found[found["metric"] == found["workload"].map(WORKLOAD_METRICS)]


def left_out_notes(numbers: pd.DataFrame, workloads: Iterable[str]) -> list[str]:
    """One footnote per workload of `workloads` with ``candidates`` of another metric than its own:
    how many, of which metrics, and the command that prints them."""
    found = candidates(numbers, workloads)
    others = found[found["metric"] != found["workload"].map(WORKLOAD_METRICS)]
    notes = []
    for workload, rows in others.groupby("workload", sort=True):
        counts = rows["metric"].value_counts()
        kinds = ", ".join(f"{metric} {n}" for metric, n in sorted(counts.items()))
        notes.append(f"{workload}: {len(rows)} published result(s) of other metrics than its "
                     f"{WORKLOAD_METRICS[str(workload)]} not shown ({kinds}): "
                     f"python -m scoring published --workload={workload}")
    return notes


def label(paper: str, table: str) -> str:
    """``published (Nado et al. 2021, Table 1)``: a published row's label (its config column)."""
    return f"published ({PAPERS[paper]}, {table})"


def describe(number: Any) -> str:
    """What a published row is: the paper's row and column, the config reproducing it, the note."""
    parts = [" / ".join(published.plain(p) for p in (number.row, number.column) if p)]
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


def with_published(board: pd.DataFrame, directory: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """(`board` followed by the rows of the published numbers it shows (``shown_on_leaderboard``)
    of the files in `directory` (default ``published.PUBLISHED_DIR``), the footnotes counting the
    results of other metrics left out (``left_out_notes``)); (`board`, []) when it scores no
    full-scale workload (the files are not read then)."""
    workloads = list(board["workload"].unique())
    if board.empty or not any(is_full_scale(w) for w in workloads):
        return board, []
    numbers = published.load(directory)
    notes = left_out_notes(numbers, workloads)
    rows = leaderboard_rows(board, shown_on_leaderboard(numbers, workloads))
    if rows.empty:
        return board, notes
    return pd.concat([board, rows], ignore_index=True), notes
