"""Published numbers on the leaderboard (scoring/published_board.py): a full-scale workload's board
shows the published results of the metric it measures beside the measured rows, never ranked, and
counts the results of other metrics in a footnote naming `python -m scoring published`; a CPU
workload's board is unchanged and reads no published file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from _published_examples import example_published, write_csv
from conftest import Result
from test_bad_input import assert_one_line_error

import workloads
from harness import store
from scoring import published, published_board


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
    # the rows follow the header's rule of dashes (the heading above it takes one line or two)
    rule = next(i for i, line in enumerate(section) if line and set(line) <= {"-", " "})
    return [line for line in section[rule + 1:] if not line.startswith("  #")]


IMAGENET_NOTE = ("imagenet_resnet50: 1 published result(s) of other metrics than its valid_top1 not shown "
                 "(train_top1 1): python -m scoring published --workload=imagenet_resnet50.")
BERT_NOTE = ("bert_large_32k: 1 published result(s) of other metrics than its mlm_accuracy_seq512 not shown "
             "(squad_f1 1): python -m scoring published --workload=bert_large_32k.")


def test_full_scale_leaderboards_show_the_published_rows_of_their_metric(
        three_workloads_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        main_in_process: Callable[..., Result]) -> None:
    monkeypatch.setattr(published, "PUBLISHED_DIR", str(example_published(tmp_path / "published")))
    out = main_in_process("scoring", "leaderboard", f"--results={three_workloads_db}", f"--out={tmp_path}/lb")
    assert out.returncode == 0, out.stderr
    imagenet = table_lines(out.stdout, "imagenet_resnet50")
    # Section 3's two validation accuracies; Table 3's training accuracy of LARS is not a row
    assert [line.split()[:2] for line in imagenet] == [["1", "nesterov"], ["-", "lars"], ["-", "nesterov"]]
    for line in imagenet[1:]:  # the paper's number in the best-valid column, nothing measured
        assert line.split()[2] == "published"  # the label, shortened to fit: in full on the lines below
        assert line.split()[-10:] == ["-"] * 5 + ["75.97%"] + ["-"] * 4
    assert "78.07%" not in out.stdout
    assert "\n  #- published (Nado et al. 2021, Section 3): LARS / median accuracy; config lars/mlperf\n" \
        in out.stdout
    assert "\n  #- published (Nado et al. 2021, Section 3): Configuration A / median accuracy; config " \
           "nesterov/config_a; as LARS\n" in out.stdout
    # BERT: the suite measures held-out masked-LM accuracy, the paper's number is a SQuAD F1: no row
    assert [line.split()[:2] for line in table_lines(out.stdout, "bert_large_32k")] == [["1", "lamb"]]
    assert "91.345" not in out.stdout
    assert table_lines(out.stdout, "fashion_mnist_resnet")[0].split()[:2] == ["1", "nesterov"]
    assert len(table_lines(out.stdout, "fashion_mnist_resnet")) == 1
    footer = " ".join(out.stdout.split("\n  #")[-1].split())  # after the last row's line, wrapped
    assert "never ranked" in footer  # the footer says what the rows are, and what was left out
    assert f"{BERT_NOTE} {IMAGENET_NOTE}" in footer
    md = (tmp_path / "lb.md").read_text(encoding="utf-8")
    assert "| - | lars | published (Nado et al. 2021, Section 3) | LARS / median accuracy; config lars/mlperf " \
           "| - | - | - | - | - | - | 75.97% |" in md
    assert f"{BERT_NOTE} {IMAGENET_NOTE}" in md
    page = (tmp_path / "lb.html").read_text(encoding="utf-8")
    assert page.count("published (Nado et al. 2021, Section 3)") >= 2 and "--workload=bert_large_32k." in page
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


def test_which_published_numbers_show_and_which_are_counted() -> None:
    numbers = pd.DataFrame([{"quantity": q, "metric": m, "workload": w, "submission": s}
                            for q, m, w, s in [("metric", "valid_top1", "imagenet_resnet50", "lars"),
                                               ("metric", "valid_top1", "imagenet_resnet50", ""),
                                               ("target", "valid_top1", "imagenet_resnet50", "lars"),
                                               ("metric", "train_top1", "imagenet_resnet50", "lars"),
                                               ("metric", "valid_top5", "imagenet_resnet50", "lamb"),
                                               ("metric", "squad_f1", "bert_large_32k", "lamb"),
                                               ("metric", "mlm_accuracy_seq128", "bert_large_32k", "adamw"),
                                               ("metric", "mlm_accuracy_seq512", "bert_large_32k", "lamb"),
                                               ("metric", "valid_top1", "bert_large_32k", "lamb"),
                                               ("metric", "mlm_accuracy_seq512", "pydocs_bert", "lamb"),
                                               ("metric", "valid_top1", "fashion_mnist_lenet", "adamw")]])
    shown = published_board.shown_on_leaderboard
    assert shown(numbers, ["imagenet_resnet50"]).index.tolist() == [0]
    assert shown(numbers, ["imagenet_resnet50", "bert_large_32k", "pydocs_bert", "fashion_mnist_lenet"]
                 ).index.tolist() == [0, 7]  # the CPU workloads (pydocs_bert too) show none
    assert published_board.left_out_notes(numbers, ["imagenet_resnet50", "bert_large_32k", "pydocs_bert"]) == [
        "bert_large_32k: 3 published result(s) of other metrics than its mlm_accuracy_seq512 not shown "
        "(mlm_accuracy_seq128 1, squad_f1 1, valid_top1 1): python -m scoring published --workload=bert_large_32k",
        "imagenet_resnet50: 2 published result(s) of other metrics than its valid_top1 not shown "
        "(train_top1 1, valid_top5 1): python -m scoring published --workload=imagenet_resnet50"]
    assert published_board.left_out_notes(numbers, ["fashion_mnist_lenet"]) == []


def test_every_full_scale_workload_declares_a_published_metric() -> None:
    """The full-scale workloads (ImageNet, BERT-Large: by their names) are those of WORKLOAD_METRICS,
    each with a metric of the published files' vocabulary; the CPU ones are not among them."""
    names = workloads.workload_names()
    full = {n for n in names if n.startswith(("imagenet_", "bert_"))}
    assert set(published_board.WORKLOAD_METRICS) == full
    assert set(published_board.WORKLOAD_METRICS.values()) <= set(published.METRICS)
    assert not published_board.is_full_scale("pydocs_bert") and not published_board.is_full_scale(
        "fashion_mnist_resnet")


def test_the_real_imagenet_numbers_show_on_its_leaderboard(three_workloads_db: str, tmp_path: Path,
                                                           main_in_process: Callable[..., Result]) -> None:
    numbers = published.load()
    expected = published_board.shown_on_leaderboard(numbers, ["imagenet_resnet50"])
    if expected.empty:
        pytest.skip("no published metric about a submission on imagenet_resnet50 yet")
    assert set(expected["metric"]) == {"valid_top1"}
    out = main_in_process("scoring", "leaderboard", f"--results={three_workloads_db}",
                          "--workload=imagenet_resnet50", f"--out={tmp_path}/lb")
    assert out.returncode == 0, out.stderr
    rows = [line for line in table_lines(out.stdout, "imagenet_resnet50") if "published (" in line]
    assert len(rows) == len(expected)
    for line, number in zip(rows, expected.itertuples()):
        assert line.split()[:2] == ["-", number.submission]
        assert published.format_value(number.value, number.unit) in line
    notes = published_board.left_out_notes(numbers, ["imagenet_resnet50"])
    assert " ".join(notes) in " ".join(out.stdout.split())


def test_the_real_bert_numbers_are_counted_not_shown(three_workloads_db: str, tmp_path: Path,
                                                     main_in_process: Callable[..., Result]) -> None:
    """No paper reports the suite's BERT metric (held-out seq-512 masked-LM accuracy): their SQuAD F1,
    phase-1 masked-LM accuracies and losses about bert_large_32k are counted in the footer."""
    numbers = published.load()
    candidates = published_board.candidates(numbers, ["bert_large_32k"])
    if candidates.empty:
        pytest.skip("no published result about a submission on bert_large_32k yet")
    assert published_board.shown_on_leaderboard(numbers, ["bert_large_32k"]).empty
    out = main_in_process("scoring", "leaderboard", f"--results={three_workloads_db}",
                          "--workload=bert_large_32k", f"--out={tmp_path}/lb")
    assert out.returncode == 0, out.stderr
    assert len(table_lines(out.stdout, "bert_large_32k")) == 1
    footer = " ".join(out.stdout.split())
    assert f"bert_large_32k: {len(candidates)} published result(s) of other metrics" in footer
