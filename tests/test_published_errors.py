"""Bad published and coverage files (reference_results/published/, reference_results/coverage/):
each kind of problem is one line naming the file, the line and the column, and what to write
instead, from `python -m scoring published` and `python -m scoring coverage`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _published_examples import COVERAGE_ROWS, NADO, NADO_ROWS, YOU_ROWS, with_field, write_csv
from conftest import Result
from test_bad_input import assert_one_line_error

from scoring import coverage, published

C = published.COLUMNS
#: Nado et al. Table 4 as the text prints it: batch sizes 32k, 65k/32k and 65k, where 65k is 65,536.
Q_NADO_TABLE_4 = ("Batch size Step budget LAMB Adam 32k 15,625 91.48 <b>91.58</b> 65k/32k 8,599 90.58 "
                  "<b>91.04</b> 65k 7,818 – <b>90.46</b> Table 4.")
ROW_65K = ["Table 4", "65k", "Batch size", "66560", "65k", "examples", "batch_size", "", Q_NADO_TABLE_4, NADO,
           "bert_large_65k", "", "", ""]
ROW_32K_STEPS = ["Table 4", "32k", "Step budget", "32768", "32K", "steps", "steps", "", Q_NADO_TABLE_4, NADO,
                 "", "", "", ""]

BAD_PUBLISHED = {
    "wrong column order": (
        lambda d: write_csv(d / "nado2021.csv", [C[1], C[0], *C[2:]], NADO_ROWS),
        "nado2021.csv line 1: the columns must be table, row, column, value, printed, unit, quantity, metric, "
        "quote, source, workload, submission, config, note in this order; got row, table,"),
    "unknown unit": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 1, "unit", "percent", C)),
        "nado2021.csv line 3 column unit: unknown unit 'percent'; one of %, fraction, F1,"),
    "unknown quantity": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 0, "quantity", "accuracy", C)),
        "nado2021.csv line 2 column quantity: unknown quantity 'accuracy'; one of metric, target,"),
    "a result without its metric": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 1, "metric", "", C)),
        "nado2021.csv line 3 column metric: empty; a number of quantity metric says which metric it is: one of "
        "valid_top1, valid_top5, train_top1,"),
    "an unknown metric": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 0, "metric", "accuracy", C)),
        "nado2021.csv line 2 column metric: unknown metric 'accuracy'; a number of quantity metric says which "
        "metric it is: one of valid_top1,"),
    "a metric in a unit not its own": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 0, "metric", "squad_f1", C)),
        "nado2021.csv line 2 column unit: '%' for metric squad_f1, whose unit is 'F1'; fix the unit or the "
        "metric"),
    "a metric on a batch size": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 2, "metric", "valid_top1", C)),
        "nado2021.csv line 4 column metric: 'valid_top1' on a number of quantity batch_size; only quantities "
        "metric and target name a metric: leave it empty"),
    "printed not in the quote": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(with_field(NADO_ROWS, 2, "printed", "65,536", C),
                                                               2, "value", "65536", C)),
        "nado2021.csv line 4 column printed: '65,536' does not occur in the quote as a number"),
    "printed inside a longer number of the quote": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(with_field(NADO_ROWS, 0, "printed", "5.97", C),
                                                               0, "value", "5.97", C)),
        "nado2021.csv line 2 column printed: '5.97' does not occur in the quote as a number"),
    "value inconsistent with printed": (
        lambda d: write_csv(d / "you2019.csv", C, with_field(YOU_ROWS, 0, "value", "32000", C)),
        "you2019.csv line 2 column value: 32000 but printed '32K' is 32768; the value is the printed number"),
    "a percentage as a fraction": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 1, "value", "0.7597", C)),
        "nado2021.csv line 3 column value: 0.7597 but printed '75.97' is 75.97"),
    "value not a number": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 0, "value", "75.97%", C)),
        "nado2021.csv line 2 column value: '75.97%' is not a number"),
    "printed form not read": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 0, "printed", "seventy-six", C)),
        "nado2021.csv line 2 column printed: 'seventy-six' is not a printed form read here in a number of "
        "quantity metric"),
    "a capital K outside a batch size": (
        lambda d: write_csv(d / "nado2021.csv", C, [ROW_32K_STEPS]),
        "nado2021.csv line 2 column printed: '32K' is not a printed form read here in a number of quantity "
        "steps"),
    "a rounded k batch size": (
        lambda d: write_csv(d / "nado2021.csv", C, [ROW_65K]),
        "nado2021.csv line 2 column printed: '65k' reads 66560, not a power of two: the paper rounds"),
    "unknown workload": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 3, "workload", "imagenet_resnet", C)),
        "nado2021.csv line 5 column workload: unknown workload 'imagenet_resnet'; use a name registered in "
        "workloads/__init__.py"),
    "unknown submission": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 0, "submission", "lars_v2", C)),
        "nado2021.csv line 2 column submission: unknown submission 'lars_v2'; use a built-in submission"),
    "unknown config": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 1, "config", "nesterov/config_z", C)),
        "nado2021.csv line 3 column config: unknown config 'nesterov/config_z'; configs of nesterov: config_a,"),
    "config without its submission": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 1, "config", "config_a", C)),
        "nado2021.csv line 3 column config: config 'config_a' is not submission/config"),
    "quote too long": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 0, "quote", NADO_ROWS[0][8] * 3, C)),
        f"nado2021.csv line 2 column quote: {3 * len(NADO_ROWS[0][8])} characters; at most 300"),
    "required field empty": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 0, "source", "", C)),
        "nado2021.csv line 2 column source: empty"),
    "a record short of fields": (
        lambda d: write_csv(d / "nado2021.csv", C, [NADO_ROWS[0], NADO_ROWS[1][:-3]]),
        "nado2021.csv line 3: 11 fields, the header has 14; quote fields that contain commas"),
    "a file of another paper": (
        lambda d: write_csv(d / "shallue2019.csv", C, NADO_ROWS),
        "shallue2019.csv: unknown paper 'shallue2019'; name the file after one of nado2021, you2019, agarwal2020"),
}


@pytest.mark.parametrize("name", sorted(BAD_PUBLISHED))
def test_a_bad_published_file_is_a_one_line_error(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  main_in_process: Callable[..., Result]) -> None:
    write, expected = BAD_PUBLISHED[name]
    directory = tmp_path / "published"
    directory.mkdir()
    write(directory)
    monkeypatch.setattr(published, "PUBLISHED_DIR", str(directory))
    result = main_in_process("scoring", "published")
    assert_one_line_error(result, expected)
    assert f"error: {directory}/" in result.stderr  # names the file


def test_the_bad_rows_quote_the_paper() -> None:
    """The rows the bad files are made of are the paper's text: only the checked field is wrong."""
    directory = published.papers_dir()
    if directory is None:
        pytest.skip("no papers directory")
    with open(f"{directory}/{NADO}", encoding="utf-8") as f:
        text = published.collapse(f.read())
    assert Q_NADO_TABLE_4 in text and published.printed_in_quote("65k", Q_NADO_TABLE_4)


CV = coverage.COLUMNS
BAD_COVERAGE = {
    "wrong column order": (
        lambda d: write_csv(d / "nado2021.csv", [*CV[:3], CV[4], CV[3], CV[5]], COVERAGE_ROWS),
        "nado2021.csv line 1: the columns must be experiment, tables, status, workloads, configs, reason"),
    "unknown status": (
        lambda d: write_csv(d / "nado2021.csv", CV, with_field(COVERAGE_ROWS, 0, "status", "maybe", CV)),
        "nado2021.csv line 2 column status: unknown status 'maybe'; one of runs-here, full-scale, partial, "
        "impossible"),
    "reason missing": (
        lambda d: write_csv(d / "nado2021.csv", CV, with_field(COVERAGE_ROWS, 0, "reason", " ", CV)),
        "nado2021.csv line 2 column reason: empty; status full-scale needs the reason"),
    "no workload for runs-here": (
        lambda d: write_csv(d / "nado2021.csv", CV, with_field(COVERAGE_ROWS, 1, "workloads", "", CV)),
        "nado2021.csv line 3 column workloads: empty, but status runs-here means the suite has the workload"),
    "unknown workload in the list": (
        lambda d: write_csv(d / "nado2021.csv", CV, with_field(COVERAGE_ROWS, 0, "workloads",
                                                               "imagenet_resnet50; imagenet_vit", CV)),
        "nado2021.csv line 2 column workloads: unknown workload 'imagenet_vit'"),
    "unknown config in the list": (
        lambda d: write_csv(d / "nado2021.csv", CV, with_field(COVERAGE_ROWS, 0, "configs",
                                                               "nesterov/config_a; lars/tpu", CV)),
        "nado2021.csv line 2 column configs: unknown config 'lars/tpu'; configs of lars: "),
}


@pytest.mark.parametrize("name", sorted(BAD_COVERAGE))
def test_a_bad_coverage_file_is_a_one_line_error(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 main_in_process: Callable[..., Result]) -> None:
    write, expected = BAD_COVERAGE[name]
    directory = tmp_path / "coverage"
    directory.mkdir()
    write(directory)
    monkeypatch.setattr(coverage, "COVERAGE_DIR", str(directory))
    out = tmp_path / "COVERAGE.md"
    assert_one_line_error(main_in_process("scoring", "coverage", f"--out={out}"), expected)
    assert not out.exists()
