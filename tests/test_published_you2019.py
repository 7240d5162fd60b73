"""You et al. 2019 (LAMB) as data: checks of reference_results/published/you2019.csv and
reference_results/coverage/you2019.csv particular to this paper, beyond the generic ones of
tests/test_published.py (the format, each value equal to its printed token, each quote in the text).

- Tables 1 and 4 are a fixed-epoch scaling study ("All the experiments run the same number of
  epochs"; "batch size 32K needs to finish 15625 iterations"): steps x batch is one constant, which
  holds only with K = 1024 for batch sizes (and k = 1000 for step counts); the two BERT phases split
  the steps 9/10 and 1/10 (Sec. 4.1: 14,063 + 1,562); Table 4's warmup ratios are 3,125 iterations at
  every batch size and Table 5's warmup epochs are proportional to the batch (linear-epoch warmup);
  both tables scale the learning rate by the square root of the batch.
- The suite's BERT workloads and the named configs lamb/you2019_32k and lamb/you2019_65k_32k carry
  the published batch sizes, steps, learning rates, warmups and LAMB defaults.
- Table 3 is the best accuracy of its tuning grids (Tables 9-25), Section 4.2 the same in percent;
  a number printed in several places agrees, and where the paper disagrees with itself the note says so.
- Every table has the paper's number of rows; each quote lies in its own table's part of the text;
  the tuning grids equal the second text extraction (you2019_lamb_tables.txt) where it prints them.

Two printed forms are this paper's own, read by scoring/published.py and tested here against the
text: Table 1's lowercase k (1,024 in a batch size, 1,000 in a step count: the fixed epochs hold
only so) and Tables 4-5's LaTeX fractions (the square-root rule holds for every column).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator

import pandas as pd
import pytest
from conftest import REPO

from scoring import coverage, datafiles, published

PUBLISHED_FILE = os.path.join(REPO, "reference_results", "published", "you2019.csv")
COVERAGE_FILE = os.path.join(REPO, "reference_results", "coverage", "you2019.csv")
MD = "you2019_lamb.md"
TABLES_FILE = "you2019_lamb_tables.txt"
NO_PAPERS = "no papers directory ($PAPERS_DIR or ../shared/papers): the checks against the text need it"

ACCURACY = "Top-1 Validation Accuracy"
#: Rows of each tuning grid (Tables 9-25), counted in the paper.
GRID_ROWS = {9: 27, 10: 27, 11: 11, 12: 19, **{n: 20 for n in range(13, 26)}}
#: Tables 9-25 by optimizer as Table 3 names them ('+': Goyal et al.'s schedule).
TABLE3_GRIDS = {"adagrad": [9], "adagrad+": [10], "adam": [11], "adam+": [12],
                "adamw": list(range(13, 21)), "adamw+": list(range(21, 26))}
#: Table 1's solver rows, batch columns of Tables 2, 4 and 5.
TABLE1_ROWS = ("Baseline 512", "LAMB 512", "LAMB 1k", "LAMB 2k", "LAMB 4k", "LAMB 8k", "LAMB 16k", "LAMB 32k",
               "LAMB 64k/32k")
BATCHES = ("512", "1K", "2K", "4K", "8K", "16K", "32K")
#: Sequences per BERT pretraining run at every batch size: 32,768 x 15,625 (Table 4's caption).
SEQUENCES = 32768 * 15625
#: Sections and appendices: the text from the first marker to the second.
REGIONS = {"Section 4.1": ("4.1 BERT TRAINING", "4.2 IMAGENET TRAINING"),
           "Section 4.2": ("4.2 IMAGENET TRAINING", "4.3 Hyperparameters"),
           "Appendix D": ("D N-LAMB: NESTEROV", "E LAMB WITH LEARNING RATE CORRECTION"),
           "Appendix F": ("F LAMB WITH DIFFERENT NORMS", "G REGULAR BATCH SIZES"),
           "Appendix H": ("H IMPLEMENTATION DETAILS", "H.0.1 BERT")}
CAPTION = re.compile(r"(?:Table|Figure) \d+: ")
LATEX_LR = re.compile(r"\$\\frac\{(\d+)\}\{2\^\{([\d.]+)\} \\times (10\^3|100)\}\$")
LATEX_RATIO = re.compile(r"\$\\frac\{1\}\{(\d+)\}\$")


# --- the data -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def numbers() -> pd.DataFrame:
    return published.load_file(PUBLISHED_FILE)


def rows(numbers: pd.DataFrame, table: str, row: str | None = None, column: str | None = None) -> pd.DataFrame:
    sel = numbers[numbers["table"] == table]
    if row is not None:
        sel = sel[sel["row"] == row]
    if column is not None:
        sel = sel[sel["column"] == column]
    return sel


def one(numbers: pd.DataFrame, table: str, row: str, column: str) -> pd.Series:
    sel = rows(numbers, table, row, column)
    assert len(sel) == 1, f"{table} / {row} / {column}: {len(sel)} rows"
    return sel.iloc[0]


def cell(numbers: pd.DataFrame, table: str, row: str, column: str) -> float:
    return float(one(numbers, table, row, column)["value"])


def config(name: str) -> dict:
    with open(datafiles.config_path(name), encoding="utf-8") as f:
        return json.load(f)


# --- the paper's text -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    directory = published.papers_dir()
    if directory is None:
        pytest.skip(NO_PAPERS)
    out = {}
    for name in (MD, TABLES_FILE):
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            out[name] = f.read()
    return out


def md_table(md: str, n: int) -> list[list[str]]:
    """The tab-separated lines (header first) after Table n's caption in the markdown, as cells;
    the caption fragments 't al., 2017).' printed above three headers are skipped."""
    lines = md.split("\n")
    (start,) = [i for i, line in enumerate(lines) if line.startswith(f"Table {n}:")]
    out: list[list[str]] = []
    for line in lines[start + 1:]:
        if line.startswith("t al., 2017)."):
            continue
        if "\t" in line:
            out.append([c.strip() for c in line.split("\t")])
        elif out and not line.strip():
            break
    return out


def md_row(md: str, n: int, label: str) -> dict[str, str]:
    """Row `label` of Table n (a batch-size table) by its column headers."""
    table = md_table(md, n)
    (found,) = [r for r in table if r[0] == label]
    return dict(zip(table[0][1:], found[1:]))


def latex_lr(token: str) -> float:
    """Tables 4 and 5 print the learning rate as $\\frac{a}{2^{x} \\times 10^3}$ (or 100)."""
    m = LATEX_LR.fullmatch(token)
    assert m, token
    return int(m.group(1)) / (2 ** float(m.group(2)) * (1000 if m.group(3) == "10^3" else 100))


def region(text: str, table: str) -> str:
    """The part of the whitespace-collapsed `text` that belongs to `table`: a caption to the next
    caption, or a section's heading to the next one."""
    text = published.collapse(text)
    if table in REGIONS:
        first, last = REGIONS[table]
        return text[text.index(first):text.index(last)]
    start = text.index(f"{table}: ")
    following = CAPTION.search(text, start + 1)
    return text[start:following.start() if following else len(text)]


# --- fixed epochs, phases, warmups, learning rates ------------------------------------------------


def test_steps_times_batch_is_one_constant(numbers: pd.DataFrame) -> None:
    """Fixed #epochs (Table 4 caption): every Table 1 row but the mixed-batch one and Table 8's
    completed 16K runs see 32,768 x 15,625 sequences, K = 1024."""
    assert cell(numbers, "Table 4", "Batch Size", "32K") * cell(numbers, "Table 4", "32K (caption)",
                                                                 "iterations") == SEQUENCES
    for label in TABLE1_ROWS[:-1]:
        size, count = cell(numbers, "Table 1", label, "batch size"), cell(numbers, "Table 1", label, "steps")
        assert size * count == SEQUENCES, label
    for batch in BATCHES[1:]:
        assert cell(numbers, "Table 1", f"LAMB {batch.lower()}", "batch size") == cell(
            numbers, "Table 4", "Batch Size", batch), batch
    table8_steps = rows(numbers, "Table 8", column="last step infomation: step")["value"]
    assert cell(numbers, "Table 8", "caption", "batch size") * table8_steps.max() == SEQUENCES


def test_the_lowercase_k_of_table_1_is_1024_for_batches_and_1000_for_steps(texts: dict[str, str],
                                                                           numbers: pd.DataFrame) -> None:
    """The text's Table 1 prints batch sizes (1k, ..., 64k/32k) and steps (1000k, ..., 125k) with a
    lowercase k: the rows hold them as printed, and the fixed epochs hold only with k = 1,024 in
    the batch and 1,000 in the steps (1,000 in the batch: 500,000,000 sequences at 1k; 1,024 in the
    steps: 524,288,000 at 512); the mixed-batch row is Sec. 4.1's 65,536 then 32,768."""
    table = md_table(texts[MD], 1)
    assert table[0][:3] == ["Solver", "batch size", "steps"]
    assert [f"{r[0]} {r[1]}" for r in table[1:]] == list(TABLE1_ROWS)
    for solver, batch, steps, *_ in table[1:-1]:
        label = f"{solver} {batch}"
        assert one(numbers, "Table 1", label, "batch size")["printed"] == batch
        assert one(numbers, "Table 1", label, "steps")["printed"] == steps
        size = published.printed_value(batch, "batch_size")
        count = published.printed_value(steps, "steps")
        assert size is not None and count is not None and size * count == SEQUENCES, label
        if batch.endswith("k"):
            assert float(batch[:-1]) * 1000 * count != SEQUENCES, label
        if steps.endswith("k"):
            assert size * float(steps[:-1]) * 1024 != SEQUENCES, label
    solver, batch, *_ = table[-1]
    first, second = batch.split("/")
    assert (one(numbers, "Table 1", f"{solver} {batch}", "batch size (seq 128)")["printed"],
            one(numbers, "Table 1", f"{solver} {batch}", "batch size (seq 512)")["printed"]) == (first, second)
    assert cell(numbers, "Table 1", "LAMB 64k/32k", "batch size (seq 128)") == cell(
        numbers, "Section 4.1", "LAMB mixed-batch", "batch size (seq 128)") == 65536
    assert cell(numbers, "Table 1", "LAMB 64k/32k", "batch size (seq 512)") == cell(
        numbers, "Section 4.1", "LAMB mixed-batch", "batch size (seq 512)") == 32768
    baseline = [cell(numbers, "Section 4.1", "Baseline", f"steps (seq {n})") for n in (128, 512)]
    assert baseline == [900000, 100000] and sum(baseline) == cell(numbers, "Table 1", "Baseline 512", "steps")


def test_the_bert_phases_split_the_steps_nine_to_one(numbers: pd.DataFrame) -> None:
    """Table 1's caption: the first 9/10 of the epochs at sequence length 128, the last 1/10 at 512;
    Sec. 4.1: 14,063 + 1,562 = 15,625 at 32K, within rounding of 9/10 and 1/10."""
    steps = cell(numbers, "Section 4.1", "LAMB 32768", "steps")
    first = cell(numbers, "Section 4.1", "LAMB 32768", "steps (seq 128)")
    second = cell(numbers, "Section 4.1", "LAMB 32768", "steps (seq 512)")
    assert first + second == steps == cell(numbers, "Table 1", "LAMB 32k", "steps")
    assert abs(first - 0.9 * steps) <= 0.5 and abs(second - 0.1 * steps) <= 0.5
    assert cell(numbers, "Section 4.1", "LAMB mixed-batch", "steps") == cell(numbers, "Table 1", "LAMB 64k/32k",
                                                                               "steps")


def test_warmups_are_the_stated_fractions(numbers: pd.DataFrame) -> None:
    """Table 4's caption: 0.2 x 15625 = 3125 warmup iterations at 32K; Table 5: warmup epochs
    proportional to the batch (20 at 32K); Table 8: fractions of 31,250 steps."""
    ratio = cell(numbers, "Table 4", "32K (caption)", "warmup ratio")
    iterations = cell(numbers, "Table 4", "32K (caption)", "iterations")
    assert ratio * iterations == cell(numbers, "Table 4", "32K (caption)", "warmup iterations") == 3125
    for batch in BATCHES:
        epochs = cell(numbers, "Table 5", "Warmup Epochs", batch)
        assert epochs * 32768 / cell(numbers, "Table 5", "Batch Size", batch) == 20, batch
    fractions = rows(numbers, "Table 8", column="warmup steps")
    assert sorted(set(fractions["value"])) == [0.05, 0.1, 0.2]
    assert all("of the 31,250 steps at 16K" in note for note in fractions["note"])


def test_tables_4_and_5_scale_the_learning_rate_by_the_square_root(texts: dict[str, str],
                                                                   numbers: pd.DataFrame) -> None:
    """The learning rates, LaTeX fractions as the text prints them, are rows read by
    scoring.published (checked against this test's own reading, latex_lr): lr(B) = lr(32K)
    sqrt(B / 32K); Table 4's warmup ratio x Table 1's steps is 3,125 iterations at every batch size
    ('linear-epoch warmup')."""
    for n, top in ((4, 5e-3), (5, 0.04)):
        lrs = md_row(texts[MD], n, "Learning Rate")
        assert list(lrs) == list(BATCHES)
        for batch, token in lrs.items():
            size = cell(numbers, f"Table {n}", "Batch Size", batch)
            lr = one(numbers, f"Table {n}", "Learning Rate", batch)
            assert f"${lr['printed']}$" == token, (n, batch)
            assert lr["value"] == pytest.approx(latex_lr(token), rel=1e-12), (n, batch)
            assert lr["value"] == pytest.approx(top * math.sqrt(size / 32768), rel=1e-12), (n, batch)
    for batch, token in md_row(texts[MD], 4, "Warmup Ratio").items():
        ratio = one(numbers, "Table 4", "Warmup Ratio", batch)
        assert f"${ratio['printed']}$" == token and LATEX_RATIO.fullmatch(token), batch
        steps = cell(numbers, "Table 1", f"LAMB {batch.lower()}", "steps")
        assert steps * ratio["value"] == pytest.approx(3125, rel=1e-12), batch


# --- the suite's workloads and named configs ------------------------------------------------------


def test_bert_workloads_carry_the_published_phases(numbers: pd.DataFrame) -> None:
    """bert_large_32k: Sec. 4.1's 14,063 + 1,562 steps at 32,768; bert_large_65k_32k: 65,536 then
    32,768, 8,599 steps in all (Table 1), phase 2 as at 32K. Its phase 1 (7,037 steps, Nado et al.
    Table 8) sees the 32K phase 1's sequences within 0.1% (7,031.5 steps would be exact)."""
    import workloads

    w32 = workloads.get_workload("bert_large_32k").phases
    s41 = "Section 4.1"
    assert [(p.steps, p.global_batch_size) for p in w32] == [
        (cell(numbers, s41, "LAMB 32768", "steps (seq 128)"), cell(numbers, s41, "LAMB 32768", "batch size")),
        (cell(numbers, s41, "LAMB 32768", "steps (seq 512)"), cell(numbers, s41, "LAMB 32768", "batch size"))]
    w65 = workloads.get_workload("bert_large_65k_32k").phases
    assert [p.global_batch_size for p in w65] == [cell(numbers, s41, "LAMB mixed-batch", "batch size (seq 128)"),
                                                  cell(numbers, s41, "LAMB mixed-batch", "batch size (seq 512)")]
    assert sum(p.steps for p in w65) == cell(numbers, "Table 1", "LAMB 64k/32k", "steps")
    assert w65[1].steps == w32[1].steps
    first_32k, first_65k = w32[0].steps * w32[0].global_batch_size, w65[0].steps * w65[0].global_batch_size
    assert abs(first_65k / first_32k - 1) < 1e-3


def test_rows_name_the_workload_of_their_config(numbers: pd.DataFrame) -> None:
    with_config = numbers[numbers["config"] != ""]
    assert set(with_config["config"]) == {"lamb/you2019_32k", "lamb/you2019_65k_32k", "lamb/you2019_table5"}
    for name, group in with_config.groupby("config"):
        assert set(group["workload"]) == {config(name)["workload"]}, name
        assert set(group["submission"]) == {"lamb"}, name


def test_named_configs_carry_the_published_settings(numbers: pd.DataFrame) -> None:
    """lamb/you2019_32k: phase-1 warmup = Table 4's 3,125 iterations; both configs: Appendix H's
    LAMB defaults (lambda 0.01, beta_1 0.9, beta_2 0.999, eps 1e-6) in every phase."""
    c32, c65 = config("lamb/you2019_32k"), config("lamb/you2019_65k_32k")
    assert c32["hparams"][0]["warmup_steps"] == cell(numbers, "Table 4", "32K (caption)", "warmup iterations")
    defaults = {key: cell(numbers, "Appendix H", "LAMB defaults", column) for key, column in (
        ("weight_decay", "weight decay rate"), ("b1", "beta_1"), ("b2", "beta_2"), ("eps", "epsilon"))}
    for phase in c32["hparams"] + c65["hparams"]:
        assert {key: phase[key] for key in defaults} == defaults


def test_named_configs_carry_table_4s_learning_rate(texts: dict[str, str]) -> None:
    """Table 4's 32K rate 5 / (2^0.0 x 10^3) = 5e-3 in both phases at 32K; at 64K the square-root
    rule one step beyond the table (5e-3 x sqrt 2: derived, as the config's note says)."""
    lr_32k = latex_lr(md_row(texts[MD], 4, "Learning Rate")["32K"])
    c32, c65 = config("lamb/you2019_32k"), config("lamb/you2019_65k_32k")
    assert [h["learning_rate"] for h in c32["hparams"]] == [lr_32k, lr_32k]
    assert c65["hparams"][1]["learning_rate"] == lr_32k
    assert c65["hparams"][0]["learning_rate"] == pytest.approx(lr_32k * math.sqrt(65536 / 32768), rel=1e-7)
    assert "DERIVED" in c65["notes"]


def test_the_table_5_config_carries_its_32k_column(numbers: pd.DataFrame) -> None:
    """lamb/you2019_table5 (on imagenet_resnet50_90epochs, the rows' workload): Table 5's 32K learning
    rate 4 / (2^0.0 x 100) at the reference batch 32,768 with square-root scaling, and the 32K
    column's 20 warmup epochs as steps of 32,768 (1,281,167 training images, rounded)."""
    hparams = config("lamb/you2019_table5")["hparams"]
    assert hparams["learning_rate"] == cell(numbers, "Table 5", "Learning Rate", "32K")
    assert (hparams["lr_scaling"], hparams["lr_reference_batch_size"]) == ("sqrt", cell(numbers, "Table 5",
                                                                                         "Batch Size", "32K"))
    epochs = cell(numbers, "Table 5", "Warmup Epochs", "32K")
    assert hparams["warmup_steps"] == round(epochs * 1281167 / cell(numbers, "Table 5", "Batch Size", "32K"))


#: The metric of each table's results and targets (published.METRICS): one per table, or by row or
#: column label.
METRICS_BY_TABLE: dict[str, str | dict[str, str]] = {
    "Table 1": "squad_f1", "Table 2": "squad_f1", "Table 3": "valid_top1", "Table 6": "valid_top1",
    "Table 7": "valid_top1", "Section 4.1": "squad_f1", "Section 4.2": "valid_top1",
    "Appendix F": "valid_top1_difference",
    "Table 4": {"F1 score": "squad_f1", "Exact Match": "squad_exact_match", "Baseline (caption)": "squad_f1"},
    "Table 5": {"Top-1 Accuracy": "valid_top1", "Top-5 Accuracy": "valid_top5",
                "Goyal et al. (2017) (caption)": "valid_top1", "Stanford DAWN Bench (caption)": "valid_top5"},
    "Table 8": {"last step infomation: loss": "pretraining_loss", "F1 score on dev set": "squad_f1",
                "target F1 score": "squad_f1", "F1 score": "squad_f1"},
    "Figure 8": {"scaling efficiency": "scaling_efficiency", "speedup": "speedup"},
    **{f"Table {n}": "valid_top1" for n in range(9, 26)},
}


def test_each_result_declares_the_metric_its_table_prints(numbers: pd.DataFrame) -> None:
    """BERT: SQuAD v1.1 dev F1 and exact match ('Dev set means the test data'), Table 8's training
    loss; ImageNet, CIFAR-10, MNIST: top-1 on held-out data (Table 5: also top-5)."""
    results = numbers[numbers["quantity"].isin(published.METRIC_QUANTITIES)]
    assert set(results["table"]) == set(METRICS_BY_TABLE)
    for r in results.itertuples():
        expected = METRICS_BY_TABLE[r.table]
        if not isinstance(expected, str):
            expected = expected.get(r.row, expected.get(r.column, ""))
        assert r.metric == expected, (r.table, r.row, r.column)


# --- numbers printed in several places ------------------------------------------------------------


def test_table_3_is_the_best_of_its_tuning_grids(numbers: pd.DataFrame) -> None:
    """Table 3's adaptive solvers are the best of Tables 9-25 to 4 decimals; Sec. 4.2 prints the same
    in percent (55.38%/66.04%/67.27%, then 72.0%/73.48%/73.07% with Goyal et al.'s schedule)."""
    for name, tables in TABLE3_GRIDS.items():
        grid = numbers[numbers["table"].isin([f"Table {n}" for n in tables]) & (numbers["column"] == ACCURACY)]
        best = grid["value"].max()
        assert f"{best:.4f}" == one(numbers, "Table 3", "Accuracy", name)["printed"], name
        percent = one(numbers, "Section 4.2", f"{name.upper()} 16K", "top-1 accuracy")["printed"]
        decimals = len(percent.split(".")[1])
        assert f"{100 * best:.{decimals}f}" == percent, name
    assert cell(numbers, "Table 3", "Accuracy", "lamb") == cell(numbers, "Table 5", "Top-1 Accuracy", "16K")


def test_a_number_printed_twice_agrees(numbers: pd.DataFrame) -> None:
    for batch in BATCHES:
        f1 = cell(numbers, "Table 2", "LAMB", batch)
        assert f1 == cell(numbers, "Table 4", "F1 score", batch) == cell(
            numbers, "Table 1", f"LAMB {batch.lower()}", "F1 score on dev set"), batch
    assert cell(numbers, "Table 1", "LAMB 16k", "F1 score on dev set") == cell(numbers, "Table 8",
                                                                                "LAMB (caption)", "F1 score")
    baseline = cell(numbers, "Table 1", "Baseline 512", "F1 score on dev set")
    assert baseline == cell(numbers, "Table 4", "Baseline (caption)", "F1 score") == cell(
        numbers, "Section 4.1", "Baseline", "F1 score")
    assert f"{100 * cell(numbers, 'Table 5', 'Top-1 Accuracy', '32K'):.1f}" == one(
        numbers, "Section 4.2", "LAMB 32K", "top-1 accuracy")["printed"]
    assert 100 * cell(numbers, "Table 5", "Top-1 Accuracy", "2K") == pytest.approx(
        cell(numbers, "Section 4.2", "LAMB 2K", "top-1 accuracy"), abs=1e-9)
    assert cell(numbers, "Table 3", "caption", "batch size") == cell(numbers, "Table 13", "caption", "batch size")


@pytest.mark.parametrize("table, row, column, other", [
    ("Table 2", "Baseline (caption)", "F1 score", "90.395"),          # Table 1, Table 4, Sec. 4.1: 90.395
    ("Section 4.1", "LAMB 32768", "F1 score", "91.475"),              # Tables 1, 2, 4: 91.475
    ("Section 4.1", "ADAMW 16K", "target F1 score", "90.5"),          # Table 8's caption: 90.5
    ("Table 8", "caption", "target F1 score", "88.1 vs 90.4"),        # Sec. 4.1
    ("Section 4.1", "LAMB mixed-batch", "time", "76.19m"),            # Table 1
    ("Figure 8", "32K", "speedup", "49.1"),                           # Sec. 4.1, App. H.0.1
])
def test_where_the_paper_disagrees_with_itself_the_note_says_so(numbers: pd.DataFrame, table: str, row: str,
                                                                 column: str, other: str) -> None:
    number = one(numbers, table, row, column)
    assert other.split(" vs ")[-1].rstrip("m") != number["printed"]
    assert other in number["note"]


# --- sizes, places, the second extraction ---------------------------------------------------------


#: (table, column) -> rows: Table 1's 9 solver rows (the mixed-batch row's two batch sizes apart).
TABLE1_SIZES = {"F1 score on dev set": 9, "TPUs": 9, "Time": 9, "batch size": 8, "batch size (seq 128)": 1,
                "batch size (seq 512)": 1, "steps": 9}
#: (table, row) -> cells of one-row tables (Table 7: 5 optimizers and the count of runs).
ROW_SIZES = {("Table 2", "Batch Size"): 7, ("Table 3", "Accuracy"): 8, ("Table 6", "Test Accuracy"): 5,
             ("Table 7", "Average accuracy over 5 runs"): 6}


def test_every_table_has_the_papers_size(numbers: pd.DataFrame) -> None:
    """Table 2: Lars at 32K is 'diverge' (no row); Table 8: 9 runs, 4 'diverged' (no F1)."""
    for column, size in TABLE1_SIZES.items():
        assert len(rows(numbers, "Table 1", column=column)) == size, column
    assert sorted(set(rows(numbers, "Table 1", column="F1 score on dev set")["row"])) == sorted(TABLE1_ROWS)
    for (table, row), size in ROW_SIZES.items():
        assert len(rows(numbers, table, row)) == size, (table, row)
    assert sorted(rows(numbers, "Table 2", "Lars")["column"]) == sorted(BATCHES[:-1])
    assert sorted(rows(numbers, "Table 2", "LAMB")["column"]) == sorted(BATCHES)
    for n, labels in ((4, ("Batch Size", "Learning Rate", "Warmup Ratio", "F1 score", "Exact Match")),
                      (5, ("Batch Size", "Learning Rate", "Warmup Epochs", "Top-5 Accuracy", "Top-1 Accuracy"))):
        for label in labels:
            assert list(rows(numbers, f"Table {n}", label)["column"]) == list(BATCHES), (n, label)
    table8 = rows(numbers, "Table 8")
    assert table8["row"].str.startswith("warmup ").sum() == 9 * 5 + 5
    assert len(rows(numbers, "Table 8", column="F1 score on dev set")) == 5
    for n, size in GRID_ROWS.items():
        grid = rows(numbers, f"Table {n}")
        labels = grid.loc[grid["column"] == ACCURACY, "row"]
        assert len(labels) == labels.nunique() == size, n
        hparams = ["Learning Rate"] if n <= 12 else ["learning rate", "weight decay"]
        for column in hparams:
            assert list(grid.loc[grid["column"] == column, "row"]) == list(labels), (n, column)


def test_the_grid_sizes_are_the_texts(texts: dict[str, str]) -> None:
    """The markdown's data lines per tuning table: the paper's size, but Table 16 whose last row the
    extraction printed twice (0.0012817383, then 0.0012017303: not transcribed, said in its note)."""
    for n, size in GRID_ROWS.items():
        body = md_table(texts[MD], n)[1:]
        assert len(body) == size + (n == 16), n
    assert [r[0] for r in md_table(texts[MD], 16)[-2:]] == ["0.050", "0.050"]


def test_each_quote_lies_in_its_own_table(texts: dict[str, str], numbers: pd.DataFrame) -> None:
    regions: dict[tuple[str, str], str] = {}
    misplaced = []
    for r in numbers.itertuples():
        key = (r.source, r.table)
        if key not in regions:
            regions[key] = region(texts[r.source], r.table)
        if published.collapse(r.quote) not in regions[key]:
            misplaced.append(f"line {r.line}: {r.table}: {r.quote!r}")
    assert not misplaced, "\n".join(misplaced)


def grid_lines(numbers: pd.DataFrame, n: int) -> Iterator[dict[str, str]]:
    """Table n's grid rows in the file's order: printed token per column, and the L2 setting."""
    grid = rows(numbers, f"Table {n}")
    grid = grid[grid["row"] != "caption"]
    for _, group in grid.groupby("row", sort=False):
        line = dict(zip(group["column"], group["printed"]))
        l2 = re.search(r"L2 regularization: (default \(0\.01\)|disable)", group["note"].iloc[0])
        line["L2 regularization"] = l2.group(1) if l2 else ""
        yield line


def test_the_grids_are_the_tables_files(texts: dict[str, str], numbers: pd.DataFrame) -> None:
    """you2019_lamb_tables.txt prints Table 11 and the first 16 rows of Tables 13-20 without row
    separators; the file's rows (from the markdown, but for Table 15's rows 2-3), joined the same way,
    are that text exactly, with its two flaws: the weight decay 0.01 printed '001' (Tables 16, 20)
    and '-default (0.01)' in Table 16's second row."""
    lines = {int(m.group(1)): line for line in texts[TABLES_FILE].split("\n")
             if (m := re.match(r"Table (\d+): ", line))}
    table11 = "".join(f"{g['Learning Rate']}\t{g[ACCURACY]}" for g in grid_lines(numbers, 11))
    assert lines[11].split("Top-1 Validation Accuracy")[1].startswith(table11 + "Table 12: ")
    for n in range(13, 21):
        joined = []
        for i, g in enumerate(list(grid_lines(numbers, n))[:16]):
            decay = "001" if g["weight decay"] == "0.01" else g["weight decay"]
            l2 = ("-" if (n, i) == (16, 1) else "") + g["L2 regularization"]
            joined.append(f"{g['learning rate']}\t{decay}\t{l2}\t{g[ACCURACY]}")
        assert lines[n].split("Top-1 Validation Accuracy")[1] == "".join(joined), n


# --- coverage ---------------------------------------------------------------------------------------


def test_coverage_names_the_configs_with_their_workloads(numbers: pd.DataFrame) -> None:
    experiments = coverage.load_file(COVERAGE_FILE)
    for r in experiments.itertuples():
        names = datafiles.split_list(r.workloads)
        for name in datafiles.split_list(r.configs):
            if names:
                assert config(name)["workload"] in names, (r.experiment, name)
    pairs = numbers.loc[numbers["config"] != "", ["workload", "config"]].drop_duplicates()
    for p in pairs.itertuples():
        assert any(p.workload in datafiles.split_list(r.workloads) and p.config in datafiles.split_list(r.configs)
                   and r.status == "full-scale" for r in experiments.itertuples()), p.config
    lenet = numbers[numbers["workload"] == "fashion_mnist_lenet"]
    assert len(lenet) > 0 and lenet["note"].str.contains("Fashion-MNIST").all()
    (table7,) = [r for r in experiments.itertuples() if r.tables == "Table 7"]
    assert table7.status == "partial" and "Fashion-MNIST" in table7.reason
