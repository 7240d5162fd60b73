"""The papers' published numbers and the coverage map as data (reference_results/published/,
reference_results/coverage/, COVERAGE.md): every file present validates and its quotes are in the
papers' text; bad files are one-line errors; the commands run; a full-scale leaderboard shows the
published rows and a CPU one does not.

The machinery is tested on small example files written here (quotes taken from the papers' text);
the tests over the real files pass on whatever files exist.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import pytest
from conftest import Result
from test_bad_input import assert_one_line_error

from harness import store
from scoring import coverage, datafiles, published, published_board

REAL_PUBLISHED = sorted(f for f in os.listdir(published.PUBLISHED_DIR) if f.endswith(".csv")) \
    if os.path.isdir(published.PUBLISHED_DIR) else []
REAL_COVERAGE = sorted(f for f in os.listdir(coverage.COVERAGE_DIR) if f.endswith(".csv")) \
    if os.path.isdir(coverage.COVERAGE_DIR) else []
NO_PAPERS = ("no papers directory ($PAPERS_DIR, ../shared/papers beside the repository, /work/shared/papers): "
             "CI has none; the quotes are checked where the papers' text files are")

# --- example files (quotes verbatim from the papers' text files) ---------------------------------

NADO = "nado2021_reality_check.md"
Q_LARS = ("When we ran the published LARS training pipeline,<sup>9</sup> LARS achieved a median accuracy of "
          "75.97% and reached the target in 35 out of 50 trials.")
Q_CONFIG_A = ("Configuration A achieved a median accuracy of 75.97% (the same as LARS) and reached the target "
              "accuracy in 34 out of 50 trials.")
Q_BATCH = ("we measure the median validation accuracy over 50 training runs with a fixed budget of 2,512 "
           "training steps<sup>8</sup> at a batch size of 32,768.")
YOU = "you2019_lamb_tables.txt"
Q_32K = "For example, batch size 32K needs to finish 15625iterations."
Q_F1 = "Lamb achievesa F1 score of 91.345."

NADO_ROWS: list[list[str]] = [  # line 2, 3, ... of the file
    ["Section 3", "LARS", "median accuracy", "75.97", "75.97", "%", "metric", Q_LARS, NADO,
     "imagenet_resnet50", "lars", "lars/mlperf", ""],
    ["Section 3", "Configuration A", "median accuracy", "75.97", "75.97", "%", "metric", Q_CONFIG_A, NADO,
     "imagenet_resnet50", "nesterov", "nesterov/config_a", "as LARS"],
    ["Section 3", "", "batch size", "32768", "32,768", "examples", "batch_size", Q_BATCH, NADO,
     "imagenet_resnet50", "", "", ""],
    ["Section 3", "LARS", "trials reaching the target", "35", "35", "runs", "count", Q_LARS, NADO,
     "imagenet_resnet50", "lars", "", ""],
]
YOU_ROWS: list[list[str]] = [
    ["Table 4", "32K", "batch size", "32768", "32K", "examples", "batch_size", Q_32K, YOU, "bert_large_32k",
     "lamb", "lamb/you2019_32k", ""],
    ["Table 8", "Lamb", "F1 score", "91.345", "91.345", "F1", "metric", Q_F1, YOU, "bert_large_32k", "lamb",
     "", ""],
]
COVERAGE_ROWS: list[list[str]] = [
    ["Section 3: ResNet-50 at batch 32,768, Nesterov vs LARS (50 seeds)", "Section 3", "full-scale",
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
    write_csv(directory / "nado2021.csv", published.COLUMNS, NADO_ROWS)
    write_csv(directory / "you2019.csv", published.COLUMNS, YOU_ROWS)
    return directory


def with_field(rows: list[list[str]], index: int, column: str, value: str, columns: Sequence[str]
               ) -> list[list[str]]:
    """`rows` with one field changed (row `index`, which is line index + 2 of the file)."""
    out = [list(r) for r in rows]
    out[index][list(columns).index(column)] = value
    return out


# --- the real files ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REAL_PUBLISHED)
def test_every_published_file_validates(name: str) -> None:
    numbers = published.load_file(os.path.join(published.PUBLISHED_DIR, name))
    assert len(numbers) > 0, f"{name} holds no numbers"


@pytest.mark.parametrize("name", REAL_COVERAGE)
def test_every_coverage_file_validates(name: str) -> None:
    rows = coverage.load_file(os.path.join(coverage.COVERAGE_DIR, name))
    assert len(rows) > 0, f"{name} holds no experiments"


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


@pytest.mark.parametrize("printed, value", [
    ("75.97", 75.97), ("0.0001", 1e-4), ("1e-4", 0.0001), ("8.796291e-02", 0.08796291), ("1e4", 10000.0),
    ("32,768", 32768.0), ("2,512", 2512.0), ("32K", 32768.0), ("64K", 65536.0), ("0.5K", 512.0),
    ("5 \\times 10^{-5}", 0.00005), ("10^{-4}", 0.0001), ("2.8464 \\times 10^{-4}", 0.00028464),
    ("8 × 10^{-2}", 0.08), ("10\u22125", 0.00001), ("10\u22123", 0.001), ("3 × 10\u22124", 0.0003),
    ("\u22123", -3.0), ("75.9%", 75.9), ("7", 7.0),
])
def test_printed_forms(printed: str, value: float) -> None:
    assert published.printed_value(printed) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("printed", ["32k", "3,27", "1/2", "inf", "nan", "75.97 top-1", "10^-4x", "10-5", ""])
def test_printed_forms_not_read(printed: str) -> None:
    assert published.printed_value(printed) is None


def test_printed_must_be_a_whole_number_of_the_quote() -> None:
    assert published.printed_in_quote("75.9", "the target of 75.9%.")
    assert not published.printed_in_quote("5.9", "the target of 75.9%.")
    assert not published.printed_in_quote("75", "the target of 75.9%.")
    assert not published.printed_in_quote("16", "at the batch size of 16K")
    assert published.printed_in_quote("16K", "at the batch size of 16K.")
    assert published.printed_in_quote("512", "from 512 to 64K")


# --- loading the example files --------------------------------------------------------------------


def test_example_files_load_with_their_lines_and_values(tmp_path: Path) -> None:
    numbers = published.load(str(example_published(tmp_path / "published")))
    assert list(numbers.columns) == [datafiles.PAPER, datafiles.LINE, *published.COLUMNS]
    assert numbers[datafiles.PAPER].tolist() == ["nado2021"] * 4 + ["you2019"] * 2
    assert numbers[datafiles.LINE].tolist() == [2, 3, 4, 5, 2, 3]
    assert numbers["value"].tolist() == [75.97, 75.97, 32768.0, 35.0, 32768.0, 91.345]
    assert numbers["note"].tolist()[1] == "as LARS" and numbers["row"].tolist()[2] == ""


def test_example_quotes_are_in_the_papers_and_a_changed_one_is_not(tmp_path: Path) -> None:
    directory = published.papers_dir()
    if directory is None:
        pytest.skip(NO_PAPERS)
    numbers = published.load(str(example_published(tmp_path / "published")))
    assert published.quote_problems(numbers, directory) == []
    changed = numbers.copy()
    changed.loc[1, "quote"] = Q_CONFIG_A.replace("34 out of 50", "35 out of 50")
    changed.loc[4, "source"] = "nowhere.md"
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


# --- bad files: one line naming the file, line and column ---------------------------------------

C = published.COLUMNS
BAD_PUBLISHED = {
    "wrong column order": (
        lambda d: write_csv(d / "nado2021.csv", [C[1], C[0], *C[2:]], NADO_ROWS),
        "nado2021.csv line 1: the columns must be table, row, column, value, printed, unit, quantity, quote, "
        "source, workload, submission, config, note in this order; got row, table,"),
    "unknown unit": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 1, "unit", "percent", C)),
        "nado2021.csv line 3 column unit: unknown unit 'percent'; one of %, fraction, F1,"),
    "unknown quantity": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 0, "quantity", "accuracy", C)),
        "nado2021.csv line 2 column quantity: unknown quantity 'accuracy'; one of metric, target,"),
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
        "nado2021.csv line 2 column printed: 'seventy-six' is not a printed form read here"),
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
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 0, "quote", Q_LARS * 3, C)),
        f"nado2021.csv line 2 column quote: {3 * len(Q_LARS)} characters; at most 300"),
    "required field empty": (
        lambda d: write_csv(d / "nado2021.csv", C, with_field(NADO_ROWS, 0, "source", "", C)),
        "nado2021.csv line 2 column source: empty"),
    "a record short of fields": (
        lambda d: write_csv(d / "nado2021.csv", C, [NADO_ROWS[0], NADO_ROWS[1][:-3]]),
        "nado2021.csv line 3: 10 fields, the header has 13; quote fields that contain commas"),
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
        "nado2021.csv line 2 column configs: unknown config 'lars/tpu'; configs of lars: mlperf,"),
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


# --- the commands on the example files ------------------------------------------------------------


def test_scoring_published_filters_by_paper_and_workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        main_in_process: Callable[..., Result]) -> None:
    monkeypatch.setattr(published, "PUBLISHED_DIR", str(example_published(tmp_path / "published")))
    out = main_in_process("scoring", "published")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["paper", "table", "row", "column", "value", "workload", "config"]
    assert lines[2].split() == ["nado2021", "Section", "3", "LARS", "median", "accuracy", "75.97%",
                                "imagenet_resnet50", "lars/mlperf"]
    assert lines[4].split()[-4:] == ["32768", "examples", "imagenet_resnet50", "-"]
    assert lines[-1] == "6 published number(s) of Nado et al. 2021 (nado2021), You et al. 2019 (you2019): " \
                        "reference_results/published/<paper>.csv"
    out = main_in_process("scoring", "published", "--paper=you2019")
    assert out.returncode == 0 and "nado2021" not in out.stdout and "91.345 F1" in out.stdout
    assert out.stdout.splitlines()[-1].startswith("2 published number(s) of You et al. 2019 (you2019)")
    out = main_in_process("scoring", "published", "--workload=bert_large_32k", "--paper=nado2021")
    assert out.returncode == 0 and out.stdout.splitlines()[-1].startswith("0 published number(s)")
    assert_one_line_error(main_in_process("scoring", "published", "--paper=nado"),
                          "unknown paper 'nado'; known papers: nado2021, you2019, agarwal2020")
    assert_one_line_error(main_in_process("scoring", "published", "--workload=imagenet"),
                          "unknown workload 'imagenet'; known workloads: bert_large_32k,")


def test_scoring_coverage_renders_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            main_in_process: Callable[..., Result]) -> None:
    write_csv(tmp_path / "coverage" / "you2019.csv", CV, [
        ["Table 7: LeNet on MNIST, 30 epochs at batch 1,024", "Table 7", "partial", "fashion_mnist_lenet", "",
         "Fashion-MNIST instead of MNIST"],
        ["Table 1: BERT, SQuAD F1 | a pipe", "Table 1; Table 4", "impossible", "", "", "SQuAD fine-tuning"]])
    write_csv(tmp_path / "coverage" / "nado2021.csv", CV, COVERAGE_ROWS)
    monkeypatch.setattr(coverage, "COVERAGE_DIR", str(tmp_path / "coverage"))
    md = tmp_path / "out" / "COVERAGE.md"
    result = main_in_process("scoring", "coverage", f"--out={md}")
    assert result.returncode == 0, result.stderr
    text = md.read_text(encoding="utf-8")
    assert text.startswith("<!-- Generated by `python -m scoring coverage`") and "do not edit" in text
    assert "| all | 1 | 1 | 1 | 1 | 4 |" in text
    assert "| Nado et al. 2021 | 1 | 1 | 0 | 0 | 2 |" in text and "| You et al. 2019 | 0 | 0 | 1 | 1 | 2 |" in text
    assert text.index("## Nado et al. 2021 (`nado2021`)") < text.index("## You et al. 2019 (`you2019`)")
    assert ("| Section 3: ResNet-50 at batch 32,768, Nesterov vs LARS (50 seeds) | Section 3 | full-scale | "
            "`imagenet_resnet50`; configs `nesterov/config_a`, `lars/mlperf` | ImageNet and a TPU pod are not "
            "here |") in text
    assert "| Table 1: BERT, SQuAD F1 \\| a pipe | Table 1, Table 4 | impossible | - | SQuAD fine-tuning |" in text
    assert "| Figure 1: a question asked at CPU scale | Figure 1 | runs-here | `fashion_mnist_resnet` | - |" \
        in text


def test_coverage_tables_checked_against_the_published_tables(tmp_path: Path) -> None:
    numbers = published.load(str(example_published(tmp_path / "published")))
    rows = coverage.load(str(write_csv(tmp_path / "coverage" / "nado2021.csv", CV, COVERAGE_ROWS).parent))
    assert coverage.unknown_tables(rows, numbers) == [
        "reference_results/coverage/nado2021.csv line 3 column tables: 'Figure 1' is no table of "
        "reference_results/published/nado2021.csv"]
    assert coverage.uncovered_tables(rows, numbers) == []  # you2019 has no coverage file here
    rows = rows[rows["tables"] != "Section 3"]
    assert coverage.uncovered_tables(rows, numbers) == [
        "reference_results/published/nado2021.csv: 'Section 3' is in no experiment of "
        "reference_results/coverage/nado2021.csv"]


# --- the leaderboard ------------------------------------------------------------------------------


def record_run(conn, workload: str, submission: str, metric: str, target: float, best: float) -> None:
    """One completed seed through the store (as tests/conftest.py's results_db)."""
    rec = store.RunRecorder(conn, workload=workload, submission=submission,
                            submission_path=f"submissions/{submission}/submission.py", hparams="{}",
                            knobs="{}", config_id=f"{submission}-{workload}"[:10], seed=0, metric=metric,
                            direction="maximize", target=target, step_budget=2, global_batch_size=1280,
                            environment="{}")
    rec.record_eval(2, 0.5, train_loss=2.0, train_metric=0.2, valid_loss=2.1, valid_metric=best,
                    test_loss=2.1, test_metric=best)
    rec.finish("completed", steps_done=2, best_valid=best, train_seconds=0.5)


@pytest.fixture(scope="module")
def three_workloads_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("results") / "results.db")
    conn = store.connect(path)
    record_run(conn, "imagenet_resnet50", "nesterov", "accuracy", 0.759, 0.70)
    record_run(conn, "bert_large_32k", "lamb", "masked_lm_accuracy", 0.72, 0.60)
    record_run(conn, "fashion_mnist_resnet", "nesterov", "accuracy", 0.838, 0.15)
    conn.close()
    return path


def table_lines(stdout: str, workload: str) -> list[str]:
    """The table rows of one workload's section of the terminal leaderboard."""
    section = stdout.split(f"== {workload} ")[1].split("\n\n")[0].splitlines()
    return [line for line in section[3:] if not line.startswith("  #")]


def test_full_scale_leaderboards_show_the_published_rows(three_workloads_db: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         main_in_process: Callable[..., Result]) -> None:
    monkeypatch.setattr(published, "PUBLISHED_DIR", str(example_published(tmp_path / "published")))
    out = main_in_process("scoring", "leaderboard", f"--results={three_workloads_db}", f"--out={tmp_path}/lb")
    assert out.returncode == 0, out.stderr
    imagenet = table_lines(out.stdout, "imagenet_resnet50")
    assert [line.split()[:2] for line in imagenet] == [["1", "nesterov"], ["-", "lars"], ["-", "nesterov"]]
    for line in imagenet[1:]:  # the paper's number in the best-valid column, nothing measured
        assert line.split()[2] == "published"  # the label, shortened to fit: in full on the lines below
        assert line.split()[-10:] == ["-"] * 5 + ["75.97%"] + ["-"] * 4
    assert "\n  #- published (Nado et al. 2021, Section 3): LARS / median accuracy; config lars/mlperf\n" \
        in out.stdout
    assert "\n  #- published (Nado et al. 2021, Section 3): Configuration A / median accuracy; config " \
           "nesterov/config_a; as LARS\n" in out.stdout
    bert = table_lines(out.stdout, "bert_large_32k")
    assert len(bert) == 2 and bert[1].split()[:3] == ["-", "lamb", "published"] and "91.345 F1" in bert[1]
    assert "\n  #- published (You et al. 2019, Table 8): Lamb / F1 score\n" in out.stdout
    assert table_lines(out.stdout, "fashion_mnist_resnet")[0].split()[:2] == ["1", "nesterov"]
    assert len(table_lines(out.stdout, "fashion_mnist_resnet")) == 1
    assert "never ranked" in out.stdout  # the footer says what the rows are
    md = (tmp_path / "lb.md").read_text(encoding="utf-8")
    assert "| - | lars | published (Nado et al. 2021, Section 3) | LARS / median accuracy; config lars/mlperf " \
           "| - | - | - | - | - | - | 75.97% |" in md
    page = (tmp_path / "lb.html").read_text(encoding="utf-8")
    assert page.count("published (Nado et al. 2021, Section 3)") >= 2
    profile_text = page.split("Performance profiles across workloads")[1].split("<pre>")[1].split("</pre>")[0]
    assert "lars" not in profile_text  # the profile counts measured rows only


def test_a_cpu_leaderboard_is_unchanged_and_reads_no_published_file(
        three_workloads_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        main_in_process: Callable[..., Result]) -> None:
    bad = tmp_path / "published"
    write_csv(bad / "nado2021.csv", ["not", "the", "header"], [])
    monkeypatch.setattr(published, "PUBLISHED_DIR", str(bad))
    out = main_in_process("scoring", "leaderboard", f"--results={three_workloads_db}",
                          "--workload=fashion_mnist_resnet", f"--out={tmp_path}/lb")
    assert out.returncode == 0, out.stderr
    assert "published" not in out.stdout and "published" not in (tmp_path / "lb.md").read_text()
    assert len(table_lines(out.stdout, "fashion_mnist_resnet")) == 1
    # the same board with the bad file on ImageNet: the files are read, and the error names it
    result = main_in_process("scoring", "leaderboard", f"--results={three_workloads_db}",
                             "--workload=imagenet_resnet50", f"--out={tmp_path}/lb")
    assert_one_line_error(result, "nado2021.csv line 1: the columns must be table, row,")


def test_which_published_numbers_show() -> None:
    numbers = pd.DataFrame([{"quantity": q, "workload": w, "submission": s}
                            for q, w, s in [("metric", "imagenet_resnet50", "lars"),
                                            ("metric", "imagenet_resnet50", ""),
                                            ("target", "imagenet_resnet50", "lars"),
                                            ("metric", "bert_large_32k", "lamb"),
                                            ("metric", "pydocs_bert", "lamb"),
                                            ("metric", "fashion_mnist_lenet", "adamw")]])
    shown = published_board.shown_on_leaderboard
    assert shown(numbers, ["imagenet_resnet50"]).index.tolist() == [0]
    assert shown(numbers, ["imagenet_resnet50", "bert_large_32k", "pydocs_bert", "fashion_mnist_lenet"]
                 ).index.tolist() == [0, 3]  # the CPU workloads (pydocs_bert too) show none


def test_the_real_imagenet_numbers_show_on_its_leaderboard(three_workloads_db: str, tmp_path: Path,
                                                           main_in_process: Callable[..., Result]) -> None:
    expected = published_board.shown_on_leaderboard(published.load(), ["imagenet_resnet50"])
    if expected.empty:
        pytest.skip("no published metric about a submission on imagenet_resnet50 yet")
    out = main_in_process("scoring", "leaderboard", f"--results={three_workloads_db}",
                          "--workload=imagenet_resnet50", f"--out={tmp_path}/lb")
    assert out.returncode == 0, out.stderr
    rows = [line for line in table_lines(out.stdout, "imagenet_resnet50") if "published (" in line]
    assert len(rows) == len(expected)
    for line, number in zip(rows, expected.itertuples()):
        assert line.split()[:2] == ["-", number.submission]
        assert published.format_value(number.value, number.unit) in line

