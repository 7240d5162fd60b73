"""Agarwal et al., learning-rate grafting, as data: the suite's side of the transcription
(reference_results/published/agarwal2020.csv and reference_results/coverage/agarwal2020.csv; the
transcription itself: tests/test_published_agarwal2020.py).

Checked here: the grafted pairs are submissions the suite builds (M#D through submission_loader.load)
and every result names its submission; the rows on bert_large_32k are its phase 1, the BERT model is
the suite's BERT-Large; Section 5's rounded corrections are the suite's round-down to a power of 10;
each result declares the metric its table prints (masked-LM accuracy at sequence length 128 for BERT,
top-1 for the vision tables); the paper's own printed forms ('1e − 11', '10[−][11]', '340M', '10k')
read as the numbers they mean and are rows; the numbers left out have no printed form
scoring.published reads (listed); the coverage file's CPU experiment is the script it names.
"""

from __future__ import annotations

import functools
import os
import re

import pandas as pd
import pytest
from test_published_agarwal2020 import COVERAGE_CSV, GARBLED_17, NO_PAPERS, PUBLISHED_CSV, REPO, SOURCE, value_of

from harness import submission_loader
from harness.submission_loader import Submission
from scoring import coverage, published
from scoring.schedule_discovery import round_down_power_of_10


@pytest.fixture(scope="module")
def numbers() -> pd.DataFrame:
    return published.load_file(PUBLISHED_CSV)


@pytest.fixture(scope="module")
def text() -> str:
    """The paper's text, whitespace-collapsed (skipped without the papers directory)."""
    directory = published.papers_dir()
    if directory is None:
        pytest.skip(NO_PAPERS)
    with open(os.path.join(directory, SOURCE), encoding="utf-8") as f:
        return published.collapse(f.read())


# --- the suite's side: submissions, workloads, rounding ---------------------------------------------

#: The paper's optimizers as the suite's built-in submissions. SGD is SGD with momentum throughout:
#: on BERT the sgd submission with its momentum tuned (the D of adam_graft_sgd and lamb_graft_sgd),
#: on the ResNets the heavy-ball momentum submission (the M of sgd_graft_adagrad).
BERT_OPTIMIZERS = {"Adam": "adamw", "SGD": "sgd", "LAMB": "lamb", "AdaGrad": "adagrad"}
VISION_OPTIMIZERS = {**BERT_OPTIMIZERS, "SGD": "momentum"}
VISION_TABLES = {"Table 2", "Table 6"}
#: The partitions the tables name, as grafting's (submissions/lib/grafting.py PARTITIONS).
PARTITIONS = {"global": "global", "layer-wise": "layerwise", "Layer-wise": "layerwise"}
RESULT_TABLES = ("Table 1", "Table 2", "Table 4", "Table 6", "Section 5 (a)")


@functools.cache
def loaded(name: str) -> Submission:
    return submission_loader.load(name)


def suite_pair(table: str, label: str) -> tuple[str, str, str]:
    """(M, D, partition) of a row label "M#D (partition)" in the suite's names."""
    names = VISION_OPTIMIZERS if table in VISION_TABLES else BERT_OPTIMIZERS
    match = re.fullmatch(r"(\w+)#(\w+)(?: \(([\w-]+)\))?", label)
    assert match, label
    m, d, partition = match.groups()
    return names[m], names[d], PARTITIONS[partition or "layer-wise"]


def test_grafted_rows_are_m_hash_d_submissions_the_suite_builds(numbers: pd.DataFrame) -> None:
    """Each grafted optimizer of the results loads as the suite's M#D with the paper's children, and
    its submission, when a built-in graft names it, grafts the same pair; Adam#AdaGrad has no built-in
    directory (its rows say `adamw#adagrad`)."""
    from submissions.lib.grafting import PARTITIONS as SUITE_PARTITIONS

    rows = numbers[numbers["table"].isin(RESULT_TABLES) & numbers["row"].str.contains("#")]
    assert len(rows) > 0
    for r in rows.itertuples():
        m, d, partition = suite_pair(r.table, r.row)
        assert partition in SUITE_PARTITIONS
        graft = loaded(f"{m}#{d}")
        assert graft.children is not None and [c.name for c in graft.children] == [m, d]
        assert graft.defaults["partition"] in SUITE_PARTITIONS
        if r.submission:
            builtin = loaded(r.submission)
            assert builtin.children is not None and [c.name for c in builtin.children] == [m, d], r.row
        else:
            assert f"--submission={m}#{d}" in r.note, r.row
    # the paper's D on BERT is SGD with momentum: the built-in grafts' D momentum is on by default
    assert loaded("adam_graft_sgd").defaults["D.momentum"] > 0
    assert loaded("lamb_graft_sgd").defaults["D.momentum"] > 0


def test_every_result_row_names_its_suite_submission(numbers: pd.DataFrame) -> None:
    """The submission of each result: the optimizer's built-in, the built-in graft of the pair (or
    none: Adam#AdaGrad), sgd_corrected for SGD with discovered corrections."""
    builtin_grafts = {(tuple(c.name for c in loaded(g).children or ())): g
                      for g in ("adam_graft_sgd", "lamb_graft_sgd", "sgd_graft_adagrad")}
    rows = numbers[numbers["table"].isin(RESULT_TABLES) & (numbers["quantity"] == "metric")]
    for r in rows.itertuples():
        names = VISION_OPTIMIZERS if r.table in VISION_TABLES else BERT_OPTIMIZERS
        if "#" in r.row:
            m, d, _ = suite_pair(r.table, r.row)
            expected = builtin_grafts.get((m, d), "")
        elif r.row.startswith("SGD ("):
            expected = "sgd_corrected"
        else:
            expected = names[r.row]
        assert r.submission == expected, (r.table, r.row)


def test_the_rows_on_bert_large_32k_are_its_phase_1(numbers: pd.DataFrame) -> None:
    """The paper's 32K runs are bert_large_32k's phase 1 (14,063 steps at 32,768, seq 128) on the
    suite's BERT-Large; no other workload is named (the ImageNet runs are at batch 1,024 / 8,192, the
    suite's imagenet_resnet50 at 32,768); only results (not single trials) are metrics on it."""
    from workloads.bert import BertLarge32k
    from workloads.models.bert import BertConfig

    steps, batch, seq_len = BertLarge32k.PHASES[0]
    assert set(numbers["workload"]) - {""} == {"bert_large_32k"}
    on = numbers[numbers["workload"] == "bert_large_32k"]
    assert set(on[on["quantity"] == "batch_size"]["value"]) == {batch}
    assert set(on[on["column"] == "training steps"]["value"]) == {steps}
    assert value_of(numbers, "Section 4", "BERT pretraining", "sequence length") == seq_len
    assert set(on[on["quantity"] == "metric"]["table"]) == {"Table 1", "Table 4"}
    config = BertConfig()
    assert [value_of(numbers, "Section 4", "BERT model", c) for c in
            ("transformer layers", "hidden dimensions", "attention heads")] == \
        [config.num_layers, config.hidden_size, config.num_heads]


def test_the_rounded_corrections_are_the_suites_round_down(numbers: pd.DataFrame) -> None:
    """Section 5 (b): the attention groups take beta = 500, the others their median rounded down to a
    power of 10, which is `scoring discover-schedule --round`."""
    rows = numbers[(numbers["table"] == "Section 5 (b)") & (numbers["row"] != "(caption)")]
    for group in rows["row"].unique():
        median = value_of(numbers, "Section 5 (b)", group, "Median")
        rounded = value_of(numbers, "Section 5 (b)", group, "Rounded (D500)")
        attention = re.fullmatch(r"Layer \d+ [QKV]", group) is not None
        assert rounded == (500 if attention else round_down_power_of_10(median)), group


#: The metric each table's results are (published.METRICS): a table's one metric, or by column.
METRICS_BY_TABLE: dict[str, str | dict[str, str]] = {
    **{t: "mlm_accuracy_seq128" for t in ("Table 1", "Table 4", "Section 5 (a)",
                                          *(f"Table {n}" for n in range(7, 14)))},
    **{t: "valid_top1" for t in ("Table 2", "Table 6", *(f"Table {n}" for n in range(14, 22)))},
    "Section 5": {"eval accuracy": "mlm_accuracy_seq128", "top-1 accuracy": "valid_top1"},
}


def test_each_result_declares_the_metric_its_table_prints(numbers: pd.DataFrame) -> None:
    """BERT: masked-LM accuracy after the sequence-128 pretraining only (Table 1's caption: 'validation
    accuracies', Table 11's best trial 0.708929 is its 70.9: the same measurement); ImageNet and
    CIFAR-10: top-1 (the CIFAR tables' 'Test Accuracy' is the held-out top-1)."""
    results = numbers[numbers["quantity"].isin(published.METRIC_QUANTITIES)]
    assert set(results["table"]) == set(METRICS_BY_TABLE)
    for r in results.itertuples():
        expected = METRICS_BY_TABLE[r.table]
        assert r.metric == (expected if isinstance(expected, str) else expected[r.column]), (r.table, r.row)
    trials = numbers[(numbers["table"] == "Table 11") & (numbers["column"] == "Masked LM Accuracy (as fraction)")]
    assert round(100 * trials["value"].max(), 1) == value_of(numbers, "Table 1", "Adam", "Batch size 32768")


# --- what is left out -----------------------------------------------------------------------------------

#: Numbers printed in forms scoring.published learned for this paper, one per form: (table, row,
#: column, quantity, printed as in the text, its value, the quote). Each is a row of the file.
PRINTED_FORMS = [
    ("Section 4", "Adam (BERT)", "ϵ", "hparam", "1e − 11", 1e-11,
     "We fixed_ the ϵ in Adam to 1e − 11 for all BERT experiments."),
    ("Section A.1.1", "Adam (BERT)", "ϵ", "hparam", "10[−][11]", 1e-11,
     "We fixed the ϵ in Adam to 10[−][11] for all BERT experiments."),
    ("Section 4", "BERT model", "parameters", "count", "340M", 340e6,
     "16 attention heads with a total of 340M parameters."),
    ("Section 4", "BERT trial selection", "examples", "count", "10k", 1e4,
     "the masked language model accuracy over 10k examples from the training set."),
]


@pytest.mark.parametrize("table, row, column, quantity, printed, value, quote", PRINTED_FORMS,
                         ids=[f"{x[0]}:{x[4]}" for x in PRINTED_FORMS])
def test_the_papers_printed_forms_read_and_are_rows(numbers: pd.DataFrame, text: str, table: str, row: str,
                                                    column: str, quantity: str, printed: str, value: float,
                                                    quote: str) -> None:
    """The form is the paper's (in its text) and reads as the number it means; the row holds it."""
    assert quote in text and published.printed_in_quote(printed, quote)
    assert published.printed_value(printed, quantity) == pytest.approx(value, rel=1e-12)
    hit = numbers[(numbers["table"] == table) & (numbers["row"] == row) & (numbers["column"] == column)]
    assert len(hit) == 1 and hit["printed"].iloc[0] == printed and hit["quantity"].iloc[0] == quantity
    assert hit["value"].iloc[0] == pytest.approx(value, rel=1e-12)


def test_both_prints_of_adams_epsilon_agree(numbers: pd.DataFrame) -> None:
    assert value_of(numbers, "Section 4", "Adam (BERT)", "ϵ") == value_of(numbers, "Section A.1.1", "Adam (BERT)",
                                                                           "ϵ") == 1e-11


#: Numbers of the text not in the published file because no printed form reads them: (table, row,
#: column, quantity, printed as in the text, a quote holding it). Table 17's 59th trial lost its
#: decimal points ('0 001000' is 0.001): digits separated by a space are two numbers as often as one.
LEFT_OUT = [
    ("Table 17", "trial 59", "learning rate", "hparam", "0 001000", "0.092752 76.066 " + GARBLED_17),
    ("Table 17", "trial 59", "momentum", "hparam", "0 900000", "0.092752 76.066 " + GARBLED_17),
    ("Table 17", "trial 59", "weight decay", "hparam", "0 100000", "0.092752 76.066 " + GARBLED_17),
    ("Table 17", "trial 59", "objective value", "metric", "76 068", "0.092752 76.066 " + GARBLED_17),
]


@pytest.mark.parametrize("table, row, column, quantity, printed, quote", LEFT_OUT,
                         ids=[f"{x[0]}:{x[4]}" for x in LEFT_OUT])
def test_numbers_left_out_have_no_printed_form_read_here(numbers: pd.DataFrame, text: str, table: str, row: str,
                                                         column: str, quantity: str, printed: str,
                                                         quote: str) -> None:
    """Fails once scoring.published reads the form: then the number belongs in the file."""
    assert quote in text and printed in quote
    assert published.printed_value(printed, quantity) is None
    hit = numbers[(numbers["table"] == table) & (numbers["row"] == row) & (numbers["column"] == column)]
    assert hit.empty


# --- coverage -------------------------------------------------------------------------------------------


def test_the_cpu_experiment_is_the_grafting_script() -> None:
    """The runs-here experiment (Table 4's protocol on pydocs_bert) is what scripts/grafting_experiment.sh
    runs: AdamW#SGD with ratios recorded, their medians, SGD with them."""
    rows = coverage.load_file(COVERAGE_CSV)
    here = rows[rows["status"] == "runs-here"]
    assert len(here) == 1 and "Table 4" in here["tables"].iloc[0].split(";")
    assert here["workloads"].iloc[0] == "pydocs_bert" and here["configs"].iloc[0] == "adamw/pydocs_bert"
    with open(os.path.join(REPO, "scripts", "grafting_experiment.sh"), encoding="utf-8") as f:
        script = f.read()
    for step in ("--workload=pydocs_bert", "--submission=adamw --config=pydocs_bert",
                 "--submission=adam_graft_sgd --config=pydocs_bert --diagnostics_every=1",
                 "-m scoring discover-schedule", "--submission=sgd_corrected"):
        assert step in script, step


# --- Table 3 and Tables 11-13 as the search-space files of bert_large_32k ---------------------------


def table3_range(numbers: pd.DataFrame, column: str) -> tuple[float, float]:
    """(search_min, search_max) of Table 3's row for `column` (η, 1 − β1, 1 − β2, λ)."""
    rows = numbers[(numbers["table"] == "Table 3") & (numbers["column"] == column)]
    by = dict(zip(rows["quantity"], rows["value"].astype(float)))
    return by["search_min"], by["search_max"]


def space(submission: str) -> dict:
    import json

    with open(os.path.join(REPO, "submissions", submission, "search_spaces", "bert_large_32k.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("submission, prefix", [("adamw", ""), ("sgd", ""), ("adam_graft_sgd", "D.")])
def test_bert_large_32k_search_spaces_are_table_3(numbers: pd.DataFrame, submission: str, prefix: str) -> None:
    """Each range of the 32K search spaces is Table 3's (η, 1 − β1 as b1 / momentum points spanning
    [min, max], 1 − β2, λ), p is 1 at 32K (Sec. A.1.1 and every trial of Tables 11-13), and Adam's
    epsilon is Sec. A.1.1's 1e-11."""
    s = space(submission)
    lam = s[prefix + "weight_decay"]
    assert (lam["min"], lam["max"], lam["scaling"]) == (*table3_range(numbers, "λ"), "log")
    momentum = {"adamw": "b1", "sgd": "momentum", "adam_graft_sgd": "D.momentum"}[submission]
    one_minus = sorted(round(1 - b, 12) for b in s[momentum]["feasible_points"])
    assert (one_minus[0], one_minus[-1]) == table3_range(numbers, "1 − β1")
    if submission == "adamw":
        one_minus_b2 = sorted(round(1 - b, 12) for b in s["b2"]["feasible_points"])
        assert (one_minus_b2[0], one_minus_b2[-1]) == table3_range(numbers, "1 − β2")
        assert s["eps"]["feasible_points"] == [value_of(numbers, "Section A.1.1", "Adam (BERT)", "ϵ")]
    if submission != "adam_graft_sgd":
        eta = s["learning_rate"]
        assert (eta["min"], eta["max"], eta["scaling"]) == (*table3_range(numbers, "η"), "log")
        assert s["p_warmup"]["feasible_points"] == s["p_decay"]["feasible_points"] == [1.0]
        table = {"adamw": "Table 11", "sgd": "Table 12"}[submission]
        powers = numbers[(numbers["table"] == table) & (numbers["column"] == "Poly Power (p)")]["value"]
        assert set(powers.astype(float)) == {1.0}


def test_graft_lr_scale_range_is_table_3_eta_over_adams_optimum(numbers: pd.DataFrame) -> None:
    """The graft's scalar c = eta / eta_M over Table 3's eta range, eta_M Table 11's best Adam rate
    (the M fixed 'to the optimal ones found'); Table 13's trial rates lie inside."""
    accuracy = "Masked LM Accuracy (as fraction)"
    t11 = numbers[numbers["table"] == "Table 11"]
    best = t11[t11["column"] == accuracy].sort_values("value", key=lambda v: v.astype(float))["row"].iloc[-1]
    eta_m = value_of(numbers, "Table 11", best, "Learning Rate")
    assert eta_m == 0.000594
    low, high = table3_range(numbers, "η")
    c = space("adam_graft_sgd")["lr_scale"]
    assert c["min"] == pytest.approx(low / eta_m, rel=1e-3) and c["max"] == pytest.approx(high / eta_m, rel=1e-3)
    t13 = numbers[numbers["table"] == "Table 13"]
    rates = t13[t13["column"] == "Learning Rate"]["value"].astype(float)
    assert c["min"] <= rates.min() / eta_m and rates.max() / eta_m <= c["max"]
