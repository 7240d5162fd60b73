"""Test helpers for the papers' data files (tests/test_published*.py): small example files whose
quotes are verbatim from the papers' text, a CSV writer, and the skip reason without papers."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from scoring import coverage, published

NO_PAPERS = ("no papers directory ($PAPERS_DIR, ../shared/papers beside the repository, /work/shared/papers): "
             "CI has none; the quotes are checked where the papers' text files are")

NADO = "nado2021_reality_check.md"
Q_LARS = ("When we ran the published LARS training pipeline,<sup>9</sup> LARS achieved a median accuracy of "
          "75.97% and reached the target in 35 out of 50 trials.")
Q_CONFIG_A = ("Configuration A achieved a median accuracy of 75.97% (the same as LARS) and reached the target "
              "accuracy in 34 out of 50 trials.")
Q_BATCH = ("we measure the median validation accuracy over 50 training runs with a fixed budget of 2,512 "
           "training steps<sup>8</sup> at a batch size of 32,768.")
Q_TABLE_3 = "Optimizer Train Acc Test Acc Nesterov 78.97% 75.93% LARS 78.07% 75.97% Table 3."
YOU = "you2019_lamb_tables.txt"
Q_32K = "For example, batch size 32K needs to finish 15625iterations."
Q_F1 = "Lamb achievesa F1 score of 91.345."

NADO_ROWS: list[list[str]] = [  # line 2, 3, ... of the file
    ["Section 3", "LARS", "median accuracy", "75.97", "75.97", "%", "metric", "valid_top1", Q_LARS, NADO,
     "imagenet_resnet50", "lars", "lars/mlperf", ""],
    ["Section 3", "Configuration A", "median accuracy", "75.97", "75.97", "%", "metric", "valid_top1", Q_CONFIG_A,
     NADO, "imagenet_resnet50", "nesterov", "nesterov/config_a", "as LARS"],
    ["Section 3", "", "batch size", "32768", "32,768", "examples", "batch_size", "", Q_BATCH, NADO,
     "imagenet_resnet50", "", "", ""],
    ["Section 3", "LARS", "trials reaching the target", "35", "35", "runs", "count", "", Q_LARS, NADO,
     "imagenet_resnet50", "lars", "", ""],
    ["Table 3", "LARS", "Train Acc", "78.07", "78.07", "%", "metric", "train_top1", Q_TABLE_3, NADO,
     "imagenet_resnet50", "lars", "lars/mlperf", ""],
]
YOU_ROWS: list[list[str]] = [
    ["Table 4", "32K", "batch size", "32768", "32K", "examples", "batch_size", "", Q_32K, YOU, "bert_large_32k",
     "lamb", "lamb/you2019_32k", ""],
    ["Table 8", "Lamb", "F1 score", "91.345", "91.345", "F1", "metric", "squad_f1", Q_F1, YOU, "bert_large_32k",
     "lamb", "", ""],
]
COVERAGE_ROWS: list[list[str]] = [
    ["Section 3: ResNet-50 at batch 32,768, Nesterov vs LARS (50 seeds)", "Section 3; Table 3", "full-scale",
     "imagenet_resnet50", "nesterov/config_a; lars/mlperf", "ImageNet and a TPU pod are not here"],
    ["Figure 1: a question asked at CPU scale", "Figure 1", "runs-here", "fashion_mnist_resnet", "", ""],
]


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def example_published(directory: Path) -> Path:
    """`directory` holding nado2021.csv (``NADO_ROWS``) and you2019.csv (``YOU_ROWS``)."""
    write_csv(directory / "nado2021.csv", published.COLUMNS, NADO_ROWS)
    write_csv(directory / "you2019.csv", published.COLUMNS, YOU_ROWS)
    return directory


def example_coverage(directory: Path) -> Path:
    """`directory` holding nado2021.csv of ``COVERAGE_ROWS``."""
    write_csv(directory / "nado2021.csv", coverage.COLUMNS, COVERAGE_ROWS)
    return directory


def with_field(rows: list[list[str]], index: int, column: str, value: str, columns: Sequence[str]
               ) -> list[list[str]]:
    """`rows` with one field changed (row `index`, which is line index + 2 of the file)."""
    out = [list(r) for r in rows]
    out[index][list(columns).index(column)] = value
    return out
