"""The papers' published numbers and the coverage map as data (reference_results/published/,
reference_results/coverage/, COVERAGE.md): every file present validates and its quotes are in the
papers' text; the printed forms read; the commands run. Bad files: tests/test_published_errors.py;
the leaderboard: tests/test_published_board.py; one paper's transcription: test_published_<paper>.py.

The machinery is tested on small example files (tests/_published_examples.py: quotes taken from
the papers' text); the tests over the real files pass on whatever files exist.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from _published_examples import (
    NADO,
    NO_PAPERS,
    Q_CONFIG_A,
    Q_LARS,
    example_coverage,
    example_published,
    write_csv,
)
from conftest import Result
from test_bad_input import assert_one_line_error

from scoring import coverage, datafiles, published

REAL_PUBLISHED = sorted(f for f in os.listdir(published.PUBLISHED_DIR) if f.endswith(".csv")) \
    if os.path.isdir(published.PUBLISHED_DIR) else []
REAL_COVERAGE = sorted(f for f in os.listdir(coverage.COVERAGE_DIR) if f.endswith(".csv")) \
    if os.path.isdir(coverage.COVERAGE_DIR) else []


# --- the real files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_PUBLISHED)
def test_every_published_file_validates(name: str) -> None:
    numbers = published.load_file(os.path.join(published.PUBLISHED_DIR, name))
    assert len(numbers) > 0, f"{name} holds no numbers"


@pytest.mark.parametrize("name", REAL_COVERAGE)
def test_every_coverage_file_validates(name: str) -> None:
    rows = coverage.load_file(os.path.join(coverage.COVERAGE_DIR, name))
    assert len(rows) > 0, f"{name} holds no experiments"


def test_the_metric_vocabulary_is_whole() -> None:
    """Every metric has its meaning and its units, in the vocabulary of units."""
    assert set(published.METRICS) == set(published.METRIC_UNITS)
    assert all(units and set(units) <= set(published.UNITS) for units in published.METRIC_UNITS.values())


@pytest.mark.parametrize("latex, text", [
    ("Adam ( $\\epsilon = 10^{-6}$ )", "Adam (ϵ = 10^-6)"),
    ("LAMB / Adam ( $\\epsilon = 10^{-8}$ )", "LAMB / Adam (ϵ = 10^-8)"),
    ("$1 - \\mu$", "1 - μ"),
    ("$\\eta_{\\text{decay\\_factor}}$", "η_decay_factor"),
    ("$[5 \\times 10^{-2}, 0.15]$", "[5 × 10^-2, 0.15]"),
    ("Configuration A", "Configuration A"),
])
def test_names_are_shown_as_plain_text(latex: str, text: str) -> None:
    assert published.plain(latex) == text


@pytest.mark.parametrize("value, unit, shown", [
    (75.97, "%", "75.97%"), (32768.0, "examples", "32768 examples"), (0.0001, "", "0.0001"),
    (0.9941, "fraction", "0.9941"),  # You et al. Table 7 prints accuracies as fractions
])
def test_values_are_shown_with_their_unit(value: float, unit: str, shown: str) -> None:
    assert published.format_value(value, unit) == shown


def test_every_row_and_column_name_has_a_plain_form() -> None:
    """No LaTeX left in what the tables show, for every name in the real files."""
    numbers = published.load()
    names = set(numbers["row"]) | set(numbers["column"])
    assert any("$" in n for n in names)
    for name in names:
        shown = published.plain(name)
        assert "$" not in shown and "\\" not in shown and shown.strip() == shown and shown, name


def test_every_quote_is_in_its_paper() -> None:
    directory = published.papers_dir()
    if directory is None:
        pytest.skip(NO_PAPERS)
    numbers = published.load()
    if numbers.empty:
        pytest.skip("no published file yet")
    problems = published.quote_problems(numbers, directory)
    assert not problems, f"{len(problems)} quote(s) not found:\n" + "\n".join(problems)


def test_coverage_tables_are_the_published_tables() -> None:
    """Each table id of a coverage file is one of the paper's published file (spelled alike), and
    each table of a published file is in an experiment of the paper's coverage file."""
    numbers, rows = published.load(), coverage.load()
    problems = coverage.unknown_tables(rows, numbers) + coverage.uncovered_tables(rows, numbers)
    assert not problems, "\n".join(problems)


def test_committed_coverage_md_is_the_rendering() -> None:
    assert os.path.isfile(coverage.COVERAGE_MD), "reference_results/COVERAGE.md is missing: run " \
        "`python -m scoring coverage`"
    with open(coverage.COVERAGE_MD, encoding="utf-8") as f:
        committed = f.read()
    assert committed == coverage.render(coverage.load()), \
        "reference_results/COVERAGE.md is not the rendering of reference_results/coverage/: run " \
        "`python -m scoring coverage`"


def test_the_commands_run_on_the_real_files(main_in_process: Callable[..., Result], tmp_path: Path) -> None:
    out = main_in_process("scoring", "published")
    assert out.returncode == 0, out.stderr
    assert f"{len(published.load())} published number(s)" in out.stdout
    md = tmp_path / "COVERAGE.md"
    out = main_in_process("scoring", "coverage", f"--out={md}")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"wrote {md}\n" and md.read_text(encoding="utf-8") == coverage.render(coverage.load())


# --- printed forms -------------------------------------------------------------------------------


@pytest.mark.parametrize("printed, quantity, value", [
    ("75.97", "metric", 75.97), ("0.0001", "hparam", 1e-4), ("1e-4", "hparam", 0.0001),
    ("8.796291e-02", "hparam", 0.08796291), ("1e4", "count", 10000.0), ("32,768", "batch_size", 32768.0),
    ("2,512", "steps", 2512.0), ("32K", "batch_size", 32768.0), ("64K", "batch_size", 65536.0),
    ("0.5K", "batch_size", 512.0), ("1k", "batch_size", 1024.0), ("64k", "batch_size", 65536.0),
    ("1000k", "steps", 1e6), ("500k", "steps", 5e5), ("10k", "count", 1e4), ("340M", "count", 340e6),
    ("5 \\times 10^{-5}", "hparam", 0.00005), ("10^{-4}", "hparam", 0.0001),
    ("2.8464 \\times 10^{-4}", "hparam", 0.00028464), ("8 × 10^{-2}", "hparam", 0.08),
    ("10\u22125", "search_min", 0.00001), ("10\u22123", "hparam", 0.001), ("3 × 10\u22124", "hparam", 0.0003),
    ("10[\u2212][11]", "hparam", 1e-11), ("10[\u2212][5]", "search_min", 1e-5), ("1e \u2212 11", "hparam", 1e-11),
    ("1e\u221211", "hparam", 1e-11), ("\\frac{5}{2^{3.0} \\times 10^3}", "hparam", 0.000625),
    ("\\frac{4}{2^{2.5} \\times 100}", "hparam", 0.04 / 2 ** 2.5), ("\\frac{1}{320}", "hparam", 0.003125),
    ("\\frac{3 \\times 2^{-1}}{10^2}", "hparam", 0.015), ("\u22123", "hparam", -3.0), ("75.9%", "metric", 75.9),
    ("7", "count", 7.0),
])
def test_printed_forms(printed: str, quantity: str, value: float) -> None:
    assert published.printed_value(printed, quantity) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("printed, quantity", [
    ("32K", "steps"), ("32K", "count"), ("1M", "batch_size"), ("3,27", "count"), ("1/2", "hparam"),
    ("inf", "metric"), ("nan", "metric"), ("75.97 top-1", "metric"), ("10^-4x", "hparam"), ("10-5", "hparam"),
    ("10[-][5]", "hparam"), ("1e - 11", "hparam"), ("\\frac{1}{0}", "hparam"), ("\\frac{a}{2}", "hparam"),
    ("\\frac{1}{2} + 1", "hparam"), ("32kK", "batch_size"), ("", "count"),
])
def test_printed_forms_not_read(printed: str, quantity: str) -> None:
    assert published.printed_value(printed, quantity) is None


def test_a_k_means_1024_in_a_batch_size_and_1000_elsewhere() -> None:
    """The one place the multiplier is decided (scoring.published.kilo)."""
    assert published.kilo("K", "batch_size") == published.kilo("k", "batch_size") == 1024
    assert published.kilo("k", "steps") == published.kilo("k", "count") == 1000
    assert published.kilo("K", "steps") is None
    assert [published.is_power_of_two(v) for v in (1.0, 512.0, 32768.0, 65536.0, 66560.0, 0.5, 0.0)] == \
        [True, True, True, True, False, False, False]


def test_printed_must_be_a_whole_number_of_the_quote() -> None:
    assert published.printed_in_quote("75.9", "the target of 75.9%.")
    assert not published.printed_in_quote("5.9", "the target of 75.9%.")
    assert not published.printed_in_quote("75", "the target of 75.9%.")
    assert not published.printed_in_quote("16", "at the batch size of 16K")
    assert not published.printed_in_quote("16", "LAMB 16k 31250") and published.printed_in_quote("16k", "16k 3")
    assert not published.printed_in_quote("340", "a total of 340M parameters")
    assert published.printed_in_quote("16K", "at the batch size of 16K.")
    assert published.printed_in_quote("512", "from 512 to 64K")


# --- loading the example files --------------------------------------------------------------------


def test_example_files_load_with_their_lines_and_values(tmp_path: Path) -> None:
    numbers = published.load(str(example_published(tmp_path / "published")))
    assert list(numbers.columns) == [datafiles.PAPER, datafiles.LINE, *published.COLUMNS]
    assert numbers[datafiles.PAPER].tolist() == ["nado2021"] * 5 + ["you2019"] * 2
    assert numbers[datafiles.LINE].tolist() == [2, 3, 4, 5, 6, 2, 3]
    assert numbers["value"].tolist() == [75.97, 75.97, 32768.0, 35.0, 78.07, 32768.0, 91.345]
    assert numbers["metric"].tolist() == ["valid_top1", "valid_top1", "", "", "train_top1", "", "squad_f1"]
    assert numbers["note"].tolist()[1] == "as LARS" and numbers["row"].tolist()[2] == ""


def test_example_quotes_are_in_the_papers_and_a_changed_one_is_not(tmp_path: Path) -> None:
    directory = published.papers_dir()
    if directory is None:
        pytest.skip(NO_PAPERS)
    numbers = published.load(str(example_published(tmp_path / "published")))
    assert published.quote_problems(numbers, directory) == []
    changed = numbers.copy()
    changed.loc[1, "quote"] = Q_CONFIG_A.replace("34 out of 50", "35 out of 50")
    changed.loc[5, "source"] = "nowhere.md"
    spaced = numbers.copy()
    spaced.loc[0, "quote"] = Q_LARS.replace(" median ", "  median\n")  # whitespace collapses
    assert published.quote_problems(spaced, directory) == []
    problems = published.quote_problems(changed, directory)
    assert len(problems) == 2
    assert problems[0].startswith("reference_results/published/nado2021.csv line 3 column quote: not in "
                                  f"{NADO}")
    assert problems[1].startswith("reference_results/published/you2019.csv line 2 column source: nowhere.md")


def test_papers_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(published.PAPERS_DIR_ENV, str(tmp_path))
    assert published.papers_dir() == str(tmp_path)
    monkeypatch.setenv(published.PAPERS_DIR_ENV, str(tmp_path / "none"))
    with pytest.raises(published.UserError, match="is not a directory"):
        published.papers_dir()


# --- the commands on the example files ------------------------------------------------------------


def test_scoring_published_filters_by_paper_and_workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        main_in_process: Callable[..., Result]) -> None:
    monkeypatch.setattr(published, "PUBLISHED_DIR", str(example_published(tmp_path / "published")))
    out = main_in_process("scoring", "published")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["paper", "table", "row", "column", "value", "metric", "workload", "config"]
    assert lines[2].split() == ["nado2021", "Section", "3", "LARS", "median", "accuracy", "75.97%", "valid_top1",
                                "imagenet_resnet50", "lars/mlperf"]
    assert lines[4].split()[-5:] == ["32768", "examples", "-", "imagenet_resnet50", "-"]
    assert lines[6].split()[-3:] == ["train_top1", "imagenet_resnet50", "lars/mlperf"]
    assert lines[-1] == "7 published number(s) of Nado et al. 2021 (nado2021), You et al. 2019 (you2019): " \
                        "reference_results/published/<paper>.csv"
    out = main_in_process("scoring", "published", "--paper=you2019")
    assert out.returncode == 0 and "nado2021" not in out.stdout and "91.345 F1  squad_f1" in out.stdout
    assert out.stdout.splitlines()[-1].startswith("2 published number(s) of You et al. 2019 (you2019)")
    out = main_in_process("scoring", "published", "--workload=bert_large_32k", "--paper=nado2021")
    assert out.returncode == 0 and out.stdout.splitlines()[-1].startswith("0 published number(s)")
    assert_one_line_error(main_in_process("scoring", "published", "--paper=nado"),
                          "unknown paper 'nado'; known papers: nado2021, you2019, agarwal2020")
    assert_one_line_error(main_in_process("scoring", "published", "--workload=imagenet"),
                          "unknown workload 'imagenet'; known workloads: bert_large_32k,")


def test_scoring_coverage_renders_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            main_in_process: Callable[..., Result]) -> None:
    write_csv(tmp_path / "coverage" / "you2019.csv", coverage.COLUMNS, [
        ["Table 7: LeNet on MNIST, 30 epochs at batch 1,024", "Table 7", "partial", "fashion_mnist_lenet", "",
         "Fashion-MNIST instead of MNIST"],
        ["Table 1: BERT, SQuAD F1 | a pipe", "Table 1; Table 4", "impossible", "", "", "SQuAD fine-tuning"]])
    example_coverage(tmp_path / "coverage")
    monkeypatch.setattr(coverage, "COVERAGE_DIR", str(tmp_path / "coverage"))
    md = tmp_path / "out" / "COVERAGE.md"
    result = main_in_process("scoring", "coverage", f"--out={md}")
    assert result.returncode == 0, result.stderr
    text = md.read_text(encoding="utf-8")
    assert text.startswith("<!-- Generated by `python -m scoring coverage`") and "do not edit" in text
    assert "| all | 1 | 1 | 1 | 1 | 4 |" in text
    assert "| Nado et al. 2021 | 1 | 1 | 0 | 0 | 2 |" in text and "| You et al. 2019 | 0 | 0 | 1 | 1 | 2 |" in text
    assert text.index("## Nado et al. 2021 (`nado2021`)") < text.index("## You et al. 2019 (`you2019`)")
    assert ("| Section 3: ResNet-50 at batch 32,768, Nesterov vs LARS (50 seeds) | Section 3, Table 3 | "
            "full-scale | `imagenet_resnet50`; configs `nesterov/config_a`, `lars/mlperf` | ImageNet and a TPU "
            "pod are not here |") in text
    assert "| Table 1: BERT, SQuAD F1 \\| a pipe | Table 1, Table 4 | impossible | - | SQuAD fine-tuning |" in text
    assert "| Figure 1: a question asked at CPU scale | Figure 1 | runs-here | `fashion_mnist_resnet` | - |" \
        in text


def test_coverage_tables_checked_against_the_published_tables(tmp_path: Path) -> None:
    numbers = published.load(str(example_published(tmp_path / "published")))
    rows = coverage.load(str(example_coverage(tmp_path / "coverage")))
    assert coverage.unknown_tables(rows, numbers) == [
        "reference_results/coverage/nado2021.csv line 3 column tables: 'Figure 1' is no table of "
        "reference_results/published/nado2021.csv"]
    assert coverage.uncovered_tables(rows, numbers) == []  # you2019 has no coverage file here
    rows = rows[rows["tables"] != "Section 3; Table 3"]
    assert coverage.uncovered_tables(rows, numbers) == [
        f"reference_results/published/nado2021.csv: {table!r} is in no experiment of "
        "reference_results/coverage/nado2021.csv" for table in ("Section 3", "Table 3")]
