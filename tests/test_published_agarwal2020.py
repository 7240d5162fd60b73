"""Agarwal et al., learning-rate grafting, as data: the checks of the transcription particular to this
paper (reference_results/published/agarwal2020.csv), beyond the generic ones of
tests/test_published.py (formats, vocabularies, every quote in the text). The suite's side (the
submissions, workloads and metrics the rows name), the printed forms and what is left out, and the
coverage file: tests/test_published_agarwal2020_suite.py.

The source is `agarwal_grafting.md` of the papers directory: the anonymous OpenReview text "Learning
rate grafting: transferability of optimizer tuning" (under review; it cites work of 2021). The files
keep the name of its 2020 arXiv version, "Disentangling Adaptive Gradient Methods from Learning Rates",
which is not in the papers directory. This text has BERT, ImageNet and CIFAR-10 experiments only (no
translation, no BLEU or perplexity), and 21 numbered tables: results in Tables 1, 2, 4 and 6 and in
Section 5's two unnumbered tables "(a)" and "(b)", the search space in Table 3, the per-layer medians
in Table 5 (its caption lost by the text extraction), and every trial of the searches in Tables 7-21
(Table 17's caption lost too).

Checked here: the rows per table are the tables' sizes; the trial tables and Table 5 are the text's
own tables parsed independently (their markdown rendering, beside the row lines most quotes come
from), each quote inside its table with its number in the right cell; the results equal a second
transcription typed in below; numbers the paper prints twice agree, except where the paper itself
disagrees (listed); the best trial of each search is the result it reports, except where it is not
(listed); Section 5's medians are Table 5's to one decimal.
"""

from __future__ import annotations

import os
import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

import pandas as pd
import pytest

from scoring import coverage, published

PAPER = "agarwal2020"
SOURCE = "agarwal_grafting.md"
PUBLISHED_CSV = os.path.join(published.PUBLISHED_DIR, f"{PAPER}.csv")
COVERAGE_CSV = os.path.join(coverage.COVERAGE_DIR, f"{PAPER}.csv")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_PAPERS = ("no papers directory ($PAPERS_DIR, ../shared/papers beside the repository, /work/shared/papers): "
             "the transcription is checked where the papers' text files are")

# --- the tables' sizes -------------------------------------------------------------------------------

#: Rows of the published file per table: the table's numbers (trials x columns for the searches), its
#: batch sizes (column headers or caption), and the other numbers transcribed from its caption.
ROWS_PER_TABLE: dict[str, int] = {
    "Table 1": 2 + 5 * 2 - 2,          # batch sizes; 5 optimizers x 2 batch sizes, LAMB rows '-' at 32768
    "Table 2": 2 + 7 * 2 + 2,          # batch sizes; 7 x 2; the caption's 150 and 90 epochs
    "Table 3": 2 + 4 * 2,              # p's grid {1, 2}; min and max of eta, 1 - beta1, 1 - beta2, lambda
    "Table 4": 2 + 4 * 2,
    "Table 5": 24 * 2 + 6 * 24 * 2,    # 24 groups x (8K, 32K); 6 weight groups x 24 layers x (8K, 32K)
    "Section 5 (a)": 7,
    "Section 5 (b)": 9 * 2 + 1,        # 9 groups x (median, rounded); the caption's 168 dimensions
    "Table 6": 3 + 3 * 3 + 1,          # batch sizes; 3 x 3; 200 epochs
    "Table 7": 24 * 6 + 1,             # trials x columns + the caption's batch size
    "Table 8": 35 * 5 + 1,
    "Table 9": 25 * 5 + 1,
    "Table 10": 26 * 4 + 1,
    "Table 11": 32 * 6 + 1,
    "Table 12": 25 * 5 + 1,
    "Table 13": 13 * 5 + 1,
    "Table 14": 2 + 2 * 22 * 2,        # batch sizes; 2 batch sizes x trials x (learning rate, accuracy)
    "Table 15": 2 + 2 * 15 * 2,
    "Table 16": 35 * 4 + 1,
    "Table 17": 58 * 4,                # no caption; its 59th row is LEFT_OUT
    "Table 18": 2 + 2 * 30 * 2,
    "Table 19": 3 + (6 + 6 + 5) * 2,
    "Table 20": 3 + (7 + 7 + 6) * 2 + 2,  # + the caption's momentum and weight decay
    "Table 21": 3 + (7 + 7 + 6) * 2,
    "Section 4": 11, "Section 5": 7, "Section A.1.1": 11, "Section A.1.2": 2, "Section A.2.1": 16,
    "Section A.3": 4, "Figure 2": 2, "Figure 3": 2, "Figure 5": 1, "Figure 6": 4,
}

#: The trial tables: table number -> its columns in order (a table of rows of these).
BERT6 = ("Poly Power (p)", "1 − β1", "1 − β2", "Weight Decay Rate (λ)", "Learning Rate",
         "Masked LM Accuracy (as fraction)")
BERT5 = (BERT6[0], BERT6[1], *BERT6[3:])
LAMB4 = ("Learning Rate", "1 − β1", "Weight Decay Rate (λ)", "Masked LM Accuracy (as fraction)")
ADAM_IMAGENET = ("learning rate", "momentum", "weight decay", "objective value")
TRIAL_TABLES: dict[int, tuple[str, ...]] = {7: BERT6, 8: BERT5, 9: BERT5, 10: LAMB4, 11: BERT6, 12: BERT5,
                                            13: BERT5, 16: ADAM_IMAGENET, 17: ADAM_IMAGENET}
#: The learning-rate grids: table number -> (its batch sizes, the two column names of each batch size).
PAIR_TABLES: dict[int, tuple[tuple[str, ...], tuple[str, str]]] = {
    14: (("1024", "8192"), ("learning rate", "accuracy")),
    15: (("1024", "8192"), ("learning rate", "accuracy")),
    18: (("1024", "8192"), ("learning rate", "accuracy")),
    19: (("128", "512", "2048"), ("Learning Rate", "Test Accuracy")),
    20: (("128", "512", "2048"), ("Learning Rate", "Test Accuracy")),
    21: (("128", "512", "2048"), ("Learning Rate", "Test Accuracy")),
}
#: Table 17's last row as the text prints it: the decimal points lost (0.001, 0.9, 0.1, 76.068).
GARBLED_17 = "0 001000 0 900000 0 100000 76 068"


@pytest.fixture(scope="module")
def numbers() -> pd.DataFrame:
    return published.load_file(PUBLISHED_CSV)


@pytest.fixture(scope="module")
def lines() -> list[str]:
    """The lines of the paper's text file (skipped without the papers directory)."""
    directory = published.papers_dir()
    if directory is None:
        pytest.skip(NO_PAPERS)
    with open(os.path.join(directory, SOURCE), encoding="utf-8") as f:
        return f.read().split("\n")


@pytest.fixture(scope="module")
def text(lines: list[str]) -> str:
    return published.collapse("\n".join(lines))


def value_of(numbers: pd.DataFrame, table: str, row: str, column: str) -> float:
    """The value of the one number at (table, row, column)."""
    hit = numbers[(numbers["table"] == table) & (numbers["row"] == row) & (numbers["column"] == column)]
    assert len(hit) == 1, f"{len(hit)} rows at {table} / {row} / {column}"
    return float(hit["value"].iloc[0])


def printed_of(numbers: pd.DataFrame, table: str, row: str, column: str) -> str:
    hit = numbers[(numbers["table"] == table) & (numbers["row"] == row) & (numbers["column"] == column)]
    assert len(hit) == 1, f"{len(hit)} rows at {table} / {row} / {column}"
    return str(hit["printed"].iloc[0])


def test_rows_per_table_are_the_tables_sizes(numbers: pd.DataFrame) -> None:
    assert numbers.groupby("table").size().to_dict() == ROWS_PER_TABLE


# --- the trial tables and Table 5, parsed from the text -------------------------------------------------


def caption_line(lines: list[str], table: int) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(f"Table {table}: "))


def table_17_end(lines: list[str]) -> int:
    """Table 17 has no caption: it ends where Table 18's markdown header starts."""
    start = caption_line(lines, 16)
    return next(i for i in range(start, len(lines)) if lines[i].startswith("|Batch size 1024|Batch size 8192|"))


def table_region(lines: list[str], table: int) -> tuple[int, int]:
    """The lines of a trial table: from the previous table's caption to its own."""
    if table == 17:
        return caption_line(lines, 16) + 1, table_17_end(lines)
    start = table_17_end(lines) if table == 18 else caption_line(lines, table - 1) + 1
    return start, caption_line(lines, table)


def markdown_row(lines: list[str], start: int, end: int) -> str:
    """The data row of a table's markdown rendering (one line, one cell per column of numbers)."""
    rows = [line for line in lines[start:end] if line.startswith("|") and re.search(r"\d\.\d", line)]
    assert len(rows) == 1, f"{len(rows)} markdown data rows in lines {start + 1}-{end}"
    return rows[0].strip()


def is_number(token: str) -> bool:
    return re.fullmatch(r"\d+(\.\d+)?(e-\d+)?", token) is not None


def expected_trials(lines: list[str], table: int) -> dict[tuple[str, str], str]:
    """{(row, column): printed} of a trial table, parsed from the text's own rendering of it."""
    start, end = table_region(lines, table)
    out: dict[tuple[str, str], str] = {}
    if table == 17:  # no markdown rendering: its row lines (the last one garbled, left out)
        rows = [line.split() for line in lines[start:end] if line.strip() and all(map(is_number, line.split()))
                and len(line.split()) == 4]
        assert [line for line in lines[start:end] if line.strip() == GARBLED_17] == [GARBLED_17]
        for k, tokens in enumerate(rows, 1):
            out.update({(f"trial {k}", c): tok for c, tok in zip(ADAM_IMAGENET, tokens)})
        return out
    cells = [cell.split() for cell in markdown_row(lines, start, end).strip("|").split("|")]
    if table in PAIR_TABLES:
        sizes, (lr, acc) = PAIR_TABLES[table]
        assert len(cells) == len(sizes)
        for size, cell in zip(sizes, cells):
            values = [tok for tok in cell if is_number(tok)]
            assert " ".join(cell[:len(cell) - len(values)]) == f"{lr} {acc}"
            for k in range(len(values) // 2):
                out[(f"trial {k + 1}", f"Batch size {size}: {lr}")] = values[2 * k]
                out[(f"trial {k + 1}", f"Batch size {size}: {acc}")] = values[2 * k + 1]
        return out
    columns = TRIAL_TABLES[table]
    assert len(cells) == len(columns) and len({len(c) for c in cells}) == 1
    for column, cell in zip(columns, cells):
        out.update({(f"trial {k}", column): tok for k, tok in enumerate(cell, 1)})
    return out


def trial_rows(numbers: pd.DataFrame, table: int) -> pd.DataFrame:
    rows = numbers[numbers["table"] == f"Table {table}"]
    return rows[rows["row"].str.startswith("trial ")]


@pytest.mark.parametrize("table", sorted([*TRIAL_TABLES, *PAIR_TABLES]))
def test_trial_tables_are_the_texts_tables(numbers: pd.DataFrame, lines: list[str], table: int) -> None:
    got = {(r.row, r.column): r.printed for r in trial_rows(numbers, table).itertuples()}
    assert got == expected_trials(lines, table)


def cell_spans(text: str, row: str) -> list[tuple[int, int]]:
    """[start, end) in `text` of each cell of the markdown row `row` (whitespace-collapsed)."""
    offset = text.index(published.collapse(row))
    spans, start = [], offset + 1
    for cell in published.collapse(row).strip("|").split("|"):
        spans.append((start, start + len(cell)))
        start += len(cell) + 1
    return spans


@pytest.mark.parametrize("table", sorted([*TRIAL_TABLES, *PAIR_TABLES]))
def test_each_trial_quote_is_in_its_table_with_the_number_in_its_cell(
        numbers: pd.DataFrame, lines: list[str], text: str, table: int) -> None:
    """A quote is either one row line of the table (the number at its column's place) or a stretch of
    the table's markdown rendering ending at the number (in its column's cell, k-th of it for trial k);
    either way it occurs once in the text, inside the table."""
    start, end = table_region(lines, table)
    region = (len(published.collapse("\n".join(lines[:start]))),
              len(published.collapse("\n".join(lines[:end]))))
    if table in PAIR_TABLES:
        sizes, pair = PAIR_TABLES[table]
        columns = [f"Batch size {s}: {c}" for s in sizes for c in pair]
    else:
        columns = list(TRIAL_TABLES[table])
    spans = None if table == 17 else cell_spans(text, markdown_row(lines, start, end))
    for r in trial_rows(numbers, table).itertuples():
        k, place = int(r.row.split()[1]), f"Table {table} {r.row} {r.column}"
        assert text.count(r.quote) == 1, f"{place}: the quote occurs {text.count(r.quote)} times"
        at = text.index(r.quote)
        assert region[0] <= at and at + len(r.quote) <= region[1], f"{place}: the quote is outside the table"
        j = columns.index(r.column)
        if "|" not in r.quote:  # a row line of the table
            assert r.quote.split()[j] == r.printed, place
            continue
        assert spans is not None
        cell = j // 2 if table in PAIR_TABLES else j
        assert spans[cell][0] <= at + len(r.quote) <= spans[cell][1], f"{place}: the number is in another cell"
        tokens = [tok for tok in r.quote.rsplit("|", 1)[1].split() if is_number(tok)]
        # the k-th number of its column's cell; in a grid, the k-th pair (learning rate, accuracy)
        place_in_cell = (2 * k - (j % 2 == 0)) if table in PAIR_TABLES else k
        assert tokens[-1] == r.printed and len(tokens) == place_in_cell, place


def expected_table_5(lines: list[str]) -> dict[tuple[str, str], str]:
    """{(row, column): printed} of Table 5 parsed from its markdown rows: a number per group and
    batch size, or for the per-layer weights a list of 24 (layer k = the k-th number)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("|Parameter group|Median correction (8K)|"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("BERT, batch size 8192"))
    out: dict[tuple[str, str], str] = {}
    for line in lines[start + 2:end]:
        if not line.startswith("|"):
            continue
        label, c8, c32 = line.strip().strip("|").split("|")
        label = "Token type embeddings" if label.startswith("Token type embed") else label
        for column, cell in (("Median correction (8K)", c8), ("Median correction (32K)", c32)):
            values = re.findall(r"\d+\.\d+", cell)
            if label.endswith(" (layers 1-24)"):
                assert len(values) == 24, label
                group = label.removesuffix(" (layers 1-24)")
                out.update({(f"{group}, layer {k}", column): v for k, v in enumerate(values, 1)})
            else:
                assert len(values) == 1, label
                out[(label, column)] = values[0]
    return out


def test_table_5_is_the_texts_table(numbers: pd.DataFrame, lines: list[str]) -> None:
    rows = numbers[numbers["table"] == "Table 5"]
    assert {(r.row, r.column): r.printed for r in rows.itertuples()} == expected_table_5(lines)


# --- the results, typed in again ------------------------------------------------------------------------

#: The results tables as the paper prints them, typed in from it (a second transcription): the
#: columns, then one line per row, "label | number | number ..." ('-': no number).
RESULTS: dict[str, str] = {
    "Table 1": """Batch size 8192 | Batch size 32768
        Adam | 69.5 | 70.9
        SGD | 63.3 | 48.3
        Adam#SGD (Layer-wise) | 70.1 | 67.6
        LAMB | 70.4 | -
        LAMB#SGD (Layer-wise) | 71.0 | -""",
    "Table 2": """Batch size 1024 | Batch size 8192
        SGD | 76.85 | 76.68
        AdaGrad | 72.93 | 70.63
        SGD#AdaGrad (global) | 74.43 | 72.53
        SGD#AdaGrad (layer-wise) | 73.85 | 72.59
        Adam | 76.47 | 76.27
        Adam#AdaGrad (global) | 73.61 | 72.09
        Adam#AdaGrad (layer-wise) | 73.42 | 72.45""",
    "Table 4": """Batch size 8K | Batch size 32K
        Adam | 69.5 | 70.8
        SGD | 63.3 | 49.0
        Adam#SGD | 70.1 | 67.6
        SGD (Medians) | 69.5 | 63.8""",
    "Table 6": """Batch size 128 | Batch size 512 | Batch size 2048
        SGD | 94.93 | 94.39 | 93.37
        AdaGrad | 89.81 | 88.25 | 85.71
        SGD#AdaGrad | 93.42 | 92.36 | 89.81""",
    "Section 5 (a)": """Eval accuracy
        Adam | 69.5
        SGD | 63.3
        Adam#SGD | 70.1
        SGD (Medians) | 69.5
        SGD (D500) | 70.0
        SGD (D250) | 68.9
        SGD (D50) | 67.8""",
    "Section 5 (b)": """Median | Rounded (D500)
        Position embeddings | 18.8 | 10
        Word embeddings | 312.9 | 100
        Layer 1 Q | 525.5 | 500
        Layer 1 K | 466.6 | 500
        Layer 1 V | 312.9 | 500
        Layer 24 Q | 1090.1 | 500
        Layer 24 K | 1081.3 | 500
        Layer 24 V | 193.9 | 500
        Softmax | 62.8 | 10""",
    "Table 3": """search_min | search_max
        η | 10−5 | 1.0
        1 − β1 | 10−3 | 0.5
        1 − β2 | 10−3 | 0.5
        λ | 10−6 | 10−3""",
}


def typed(table: str) -> dict[tuple[str, str], str]:
    header, *body = RESULTS[table].splitlines()
    columns = [c.strip() for c in header.split("|")]
    out = {}
    for line in body:
        label, *cells = (c.strip() for c in line.split("|"))
        out.update({(label, column): cell for column, cell in zip(columns, cells) if cell != "-"})
    return out


@pytest.mark.parametrize("table", sorted(RESULTS))
def test_results_equal_a_second_transcription(numbers: pd.DataFrame, table: str) -> None:
    rows = numbers[(numbers["table"] == table) & ~numbers["row"].str.startswith("(")]
    if table == "Table 3":  # the hyperparameter is the column there, the bound the quantity
        bounds = rows[rows["quantity"].isin(["search_min", "search_max"])]
        got = {(r.column, r.quantity): r.printed for r in bounds.itertuples()}
        assert sorted(rows[rows["column"] == "p"]["printed"]) == ["1", "2"]  # the grid {1, 2}
    else:
        got = {(r.row, r.column): r.printed for r in rows.itertuples()}
    assert got == typed(table)


#: Numbers the paper prints twice: ((table, row, column), (table, row, column)) that are equal...
EQUAL_TWICE = [
    (("Table 1", "Adam", "Batch size 8192"), ("Table 4", "Adam", "Batch size 8K")),
    (("Table 1", "SGD", "Batch size 8192"), ("Table 4", "SGD", "Batch size 8K")),
    (("Table 1", "Adam#SGD (Layer-wise)", "Batch size 8192"), ("Table 4", "Adam#SGD", "Batch size 8K")),
    (("Table 1", "Adam#SGD (Layer-wise)", "Batch size 32768"), ("Table 4", "Adam#SGD", "Batch size 32K")),
    (("Table 4", "Adam", "Batch size 8K"), ("Section 5 (a)", "Adam", "Eval accuracy")),
    (("Table 4", "SGD", "Batch size 8K"), ("Section 5 (a)", "SGD", "Eval accuracy")),
    (("Table 4", "Adam#SGD", "Batch size 8K"), ("Section 5 (a)", "Adam#SGD", "Eval accuracy")),
    (("Table 4", "SGD (Medians)", "Batch size 8K"), ("Section 5 (a)", "SGD (Medians)", "Eval accuracy")),
    (("Table 4", "SGD (Medians)", "Batch size 8K"), ("Section 5", "SGD (Medians)", "eval accuracy")),
    (("Section 4", "BERT pretraining at batch size 32768", "training steps"),
     ("Section A.1.1", "BERT pretraining at batch size 32K", "training steps")),
    (("Section A.1.2", "SGD (Medians), batch size 8K", "window for the medians"),
     ("Section 5", "SGD (Medians)", "window for the medians")),
    (("Section A.1.2", "SGD (Medians), batch size 8K", "window for the medians"),
     ("Figure 6", "(a) Batch size 8K", "iterations shown")),
    (("Section A.1.2", "SGD (Medians), batch size 32K", "window for the medians"),
     ("Figure 6", "(b) Batch size 32K", "iterations shown")),
    (("Table 2", "(caption)", "training epochs"), ("Section A.2.1", "ImageNet training", "epochs")),
    (("Table 6", "(caption)", "training epochs"), ("Section A.3", "CIFAR-10 training", "epochs")),
    (("Table 20", "(caption)", "momentum"), ("Section A.3", "SGD (CIFAR-10)", "momentum")),
    (("Table 20", "(caption)", "weight decay"), ("Section A.3", "SGD (CIFAR-10)", "weight decay")),
]
#: ... and those where the paper disagrees with itself, with both values as printed.
UNEQUAL_TWICE = [
    (("Table 1", "Adam", "Batch size 32768"), ("Table 4", "Adam", "Batch size 32K"), 70.9, 70.8),
    (("Table 1", "SGD", "Batch size 32768"), ("Table 4", "SGD", "Batch size 32K"), 48.3, 49.0),
    (("Section 4", "BERT pretraining at batch size 8192", "training steps"),
     ("Section A.1.1", "BERT pretraining at batch size 8K", "training steps"), 56000, 56352),
    (("Section 5 (b)", "Layer 1 V", "Median"),
     ("Table 5", "Attention V weights, layer 1", "Median correction (8K)"), 312.9, 48.61),
]


def test_numbers_printed_twice_agree_except_where_the_paper_differs(numbers: pd.DataFrame) -> None:
    for a, b in EQUAL_TWICE:
        assert value_of(numbers, *a) == value_of(numbers, *b), (a, b)
    for a, b, va, vb in UNEQUAL_TWICE:
        assert (value_of(numbers, *a), value_of(numbers, *b)) == (va, vb), (a, b)


def agrees(best: Decimal, reported: str) -> bool:
    """Whether `reported` is `best` rounded (half up) or truncated to its printed decimals."""
    exponent = Decimal(reported).as_tuple().exponent
    assert isinstance(exponent, int)
    quantum = Decimal(1).scaleb(exponent)
    return Decimal(reported) in (best.quantize(quantum, ROUND_HALF_UP), best.quantize(quantum, ROUND_DOWN))


BERT_ACC = "Masked LM Accuracy (as fraction)"
#: (search table, its metric column, the result it reports, the best trial as printed, whether the
#: result is the best trial rounded or truncated): every search against the result of its setting.
BEST_TRIALS = [
    ("Table 7", BERT_ACC, ("Table 1", "Adam", "Batch size 8192"), "0.696613", False),
    ("Table 8", BERT_ACC, ("Table 1", "SGD", "Batch size 8192"), "0.632697", True),
    ("Table 9", BERT_ACC, ("Table 1", "Adam#SGD (Layer-wise)", "Batch size 8192"), "0.701189", True),
    ("Table 10", BERT_ACC, ("Table 1", "LAMB#SGD (Layer-wise)", "Batch size 8192"), "0.710352", True),
    ("Table 11", BERT_ACC, ("Table 1", "Adam", "Batch size 32768"), "0.708929", True),
    ("Table 11", BERT_ACC, ("Table 4", "Adam", "Batch size 32K"), "0.708929", True),  # truncated
    ("Table 12", BERT_ACC, ("Table 1", "SGD", "Batch size 32768"), "0.490207", False),
    ("Table 12", BERT_ACC, ("Table 4", "SGD", "Batch size 32K"), "0.490207", True),
    # the caption says 8K; its best trial is the 32K result (the note of its rows)
    ("Table 13", BERT_ACC, ("Table 1", "Adam#SGD (Layer-wise)", "Batch size 32768"), "0.676234", True),
    ("Table 14", "Batch size 1024: accuracy", ("Table 2", "AdaGrad", "Batch size 1024"), "72.926", True),
    ("Table 14", "Batch size 8192: accuracy", ("Table 2", "AdaGrad", "Batch size 8192"), "70.488", False),
    ("Table 15", "Batch size 1024: accuracy", ("Table 2", "SGD", "Batch size 1024"), "76.850", True),
    ("Table 15", "Batch size 8192: accuracy", ("Table 2", "SGD", "Batch size 8192"), "76.670", False),
    ("Table 16", "objective value", ("Table 2", "Adam", "Batch size 1024"), "76.580", False),
    ("Table 17", "objective value", ("Table 2", "Adam", "Batch size 8192"), "76.066", False),
    ("Table 18", "Batch size 1024: accuracy", ("Table 2", "SGD#AdaGrad (global)", "Batch size 1024"), "74.434",
     True),
    ("Table 18", "Batch size 8192: accuracy", ("Table 2", "SGD#AdaGrad (global)", "Batch size 8192"), "72.388",
     False),
    ("Table 19", "Batch size 128: Test Accuracy", ("Table 6", "AdaGrad", "Batch size 128"), "89.814", True),
    ("Table 19", "Batch size 512: Test Accuracy", ("Table 6", "AdaGrad", "Batch size 512"), "88.254", True),
    ("Table 19", "Batch size 2048: Test Accuracy", ("Table 6", "AdaGrad", "Batch size 2048"), "85.710", True),
    ("Table 20", "Batch size 128: Test Accuracy", ("Table 6", "SGD", "Batch size 128"), "94.932", True),
    ("Table 20", "Batch size 512: Test Accuracy", ("Table 6", "SGD", "Batch size 512"), "94.386", True),
    ("Table 20", "Batch size 2048: Test Accuracy", ("Table 6", "SGD", "Batch size 2048"), "93.372", True),
    ("Table 21", "Batch size 128: Test Accuracy", ("Table 6", "SGD#AdaGrad", "Batch size 128"), "93.420", True),
    ("Table 21", "Batch size 512: Test Accuracy", ("Table 6", "SGD#AdaGrad", "Batch size 512"), "92.360", True),
    ("Table 21", "Batch size 2048: Test Accuracy", ("Table 6", "SGD#AdaGrad", "Batch size 2048"), "89.818",
     True),  # truncated
]


@pytest.mark.parametrize("search, column, result, best, expected", BEST_TRIALS,
                         ids=[f"{b[0]}:{b[1]}->{b[2][0]}" for b in BEST_TRIALS])
def test_best_trial_of_each_search_is_its_reported_result(numbers: pd.DataFrame, search: str, column: str,
                                                          result: tuple[str, str, str], best: str,
                                                          expected: bool) -> None:
    trials = numbers[(numbers["table"] == search) & (numbers["column"] == column)]
    top = trials.loc[trials["value"].idxmax()]
    assert top["printed"] == best
    scale = 100 if column == BERT_ACC else 1  # a fraction against a percentage
    assert agrees(Decimal(best) * scale, printed_of(numbers, *result)) == expected


#: Section 5 (b)'s groups as Table 5 names them (Softmax: no group of that name in Table 5; Layer 1 V:
#: UNEQUAL_TWICE).
SECTION_5B_IN_TABLE_5 = {
    "Position embeddings": "Position embeddings", "Word embeddings": "Word embeddings",
    "Layer 1 Q": "Attention Q weights, layer 1", "Layer 1 K": "Attention K weights, layer 1",
    "Layer 24 Q": "Attention Q weights, layer 24", "Layer 24 K": "Attention K weights, layer 24",
    "Layer 24 V": "Attention V weights, layer 24",
}


def test_section_5_medians_are_table_5s_to_one_decimal(numbers: pd.DataFrame) -> None:
    for group, table_5_row in SECTION_5B_IN_TABLE_5.items():
        full = Decimal(printed_of(numbers, "Table 5", table_5_row, "Median correction (8K)"))
        assert agrees(full, printed_of(numbers, "Section 5 (b)", group, "Median")), group
