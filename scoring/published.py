"""The papers' published numbers as data: reference_results/published/<paper>.csv, one row per
number with its table, row, column, unit, kind and the quote it comes from (the format:
reference_results/published/README.md).

``load`` reads and checks every file: the columns in order, the vocabularies of ``unit``,
``quantity`` and ``metric`` (which metric a result or target is, declared for every one),
``value`` a number, ``printed`` a printed form this module reads, equal to ``value``
and occurring in ``quote``, and the workload, submission and config names the suite's own.
``quote_problems`` checks each quote against the paper's text (the papers directory: ``papers_dir``).
``python -m scoring published`` prints them; the full-scale leaderboard shows some of them
(scoring/published_board.py).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping

import pandas as pd

from harness.errors import UserError
from scoring import datafiles
from scoring.datafiles import LINE, PAPER, PAPERS, REPO

#: The columns of a published file, in order.
COLUMNS: tuple[str, ...] = ("table", "row", "column", "value", "printed", "unit", "quantity", "metric", "quote",
                            "source", "workload", "submission", "config", "note")
#: Columns that may not be empty.
REQUIRED: tuple[str, ...] = ("table", "value", "printed", "quantity", "quote", "source")
UNITS: tuple[str, ...] = ("%", "fraction", "F1", "steps", "epochs", "examples", "seeds", "runs", "trials",
                          "hours", "minutes", "seconds", "")
QUANTITIES: tuple[str, ...] = ("metric", "target", "batch_size", "steps", "epochs", "hparam", "search_min",
                               "search_max", "count", "time")
#: The quantities whose number is a value of a metric: they say which one in the ``metric`` column.
METRIC_QUANTITIES: tuple[str, ...] = ("metric", "target")
#: Which metric a number of quantity ``metric`` or ``target`` is, declared in the data (never guessed
#: from a column label): the vocabulary of the ``metric`` column. The leaderboard compares a
#: workload's measured rows only with numbers of the metric it measures (scoring/published_board.py).
METRICS: dict[str, str] = {
    "valid_top1": "top-1 accuracy on the held-out data the paper evaluates on: ImageNet's 50,000 validation "
                  "images (which Nado et al. Table 3 call 'Test Acc'), the CIFAR-10 and MNIST test sets",
    "valid_top5": "top-5 accuracy on the same held-out data",
    "train_top1": "top-1 accuracy on training data (Nado et al. Table 3 'Train Acc')",
    "valid_top1_difference": "a difference of two valid_top1 numbers, in points (a drop, a bound)",
    "mlm_accuracy_seq512": "BERT masked-LM accuracy on held-out sequence-512 records after both pretraining "
                           "phases (the suite's BERT workloads; MLPerf's BERT target)",
    "mlm_accuracy_seq128": "BERT masked-LM accuracy after pretraining at sequence length 128 only (Agarwal et "
                           "al.: phase 1; on 10k training examples, the trial-selection metric, which Table 1's "
                           "caption calls validation accuracy: Table 11's best trial 0.708929 is Table 1's 70.9)",
    "squad_f1": "SQuAD v1.1 dev F1 after fine-tuning the pretrained BERT",
    "squad_exact_match": "SQuAD v1.1 dev exact match after fine-tuning the pretrained BERT",
    "pretraining_loss": "BERT pretraining loss (masked LM + next sentence) as the paper reports it",
    "speedup": "wall-clock speedup over a baseline run (times)",
    "scaling_efficiency": "speedup divided by the ratio of the hardware used (%)",
}
#: The units a number of each metric may have (``UNITS``): an accuracy in % or as a fraction, an F1
#: in F1 points, a loss or a speedup without one.
METRIC_UNITS: dict[str, tuple[str, ...]] = {
    "valid_top1": ("%", "fraction"), "valid_top5": ("%", "fraction"), "train_top1": ("%", "fraction"),
    "valid_top1_difference": ("%",), "mlm_accuracy_seq512": ("%", "fraction"),
    "mlm_accuracy_seq128": ("%", "fraction"), "squad_f1": ("F1",), "squad_exact_match": ("%",),
    "pretraining_loss": ("",), "speedup": ("",), "scaling_efficiency": ("%",),
}
QUOTE_MAX_CHARS = 300
#: `NK` or `Nk` printed for a batch size: N x 1024 (You et al.: 32K = 32,768, Table 1's 1k = 1,024).
KILO_BATCH = 1024
#: `Nk` printed for anything else (steps, counts): N x 1000 (You et al. Table 1: 1000k steps =
#: 1,000,000, as the fixed epochs make it: 512 x 1,000,000 = 32,768 x 15,625).
KILO = 1000
#: `NM` printed outside a batch size: N x 10^6 (Agarwal et al.: "340M parameters").
MEGA = 1_000_000

PUBLISHED_DIR = os.path.join(REPO, "reference_results", "published")
PAPERS_DIR_ENV = "PAPERS_DIR"

_DECIMAL = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN = re.compile(rf"{_DECIMAL}(?:[eE][-+]?\d+)?")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_KILO = re.compile(r"(\d+(?:\.\d+)?)([kK])")
_MEGA = re.compile(r"(\d+(?:\.\d+)?)M")
_POWER = re.compile(rf"(?:({_DECIMAL})\s*(?:\\times|×)\s*)?10\^\{{?([-+]?\d+)\}}?")
#: 10−5 for 10^-5: the superscript flattened by the text extraction (Agarwal et al.), always with
#: the minus sign U+2212 (10-5 would be a subtraction).
_FLAT_POWER = re.compile(rf"(?:({_DECIMAL})\s*(?:\\times|×)\s*)?10\u2212(\d+)")
#: 10[−][11] for 10^-11: the superscript as the text extraction bracketed it (Agarwal et al. A.1.1).
_BRACKET_POWER = re.compile(rf"(?:({_DECIMAL})\s*(?:\\times|×)\s*)?10\[\u2212\]\[(\d+)\]")
#: 1e − 11 for 1e-11: scientific notation with the exponent's minus U+2212 set apart by spaces
#: (Agarwal et al. Section 4); an ASCII hyphen with spaces is not read (a subtraction).
_SPACED_EXPONENT = re.compile(rf"({_DECIMAL})e\s*\u2212\s*(\d+)")
#: \frac{5}{2^{3.0} \times 10^3}: a LaTeX fraction whose numerator and denominator are products of
#: decimals and powers (You et al. Tables 4-5); the braces of a power may nest one level.
_FRACTION = re.compile(r"\\frac\{((?:[^{}]|\{[^{}]*\})*)\}\{((?:[^{}]|\{[^{}]*\})*)\}")
_FACTOR = re.compile(rf"({_DECIMAL})(?:\^(?:\{{({_DECIMAL})\}}|(\d)))?")
_TIMES = re.compile(r"\\times|×")
PRINTED_FORMS = ("75.97, 1e-4, 8.796291e-02, 32,768, 32K or 1k in a batch size (x 1024), 1000k elsewhere "
                 "(x 1000), 340M outside a batch size (x 10^6), 5 \\times 10^{-5}, 10^{-4}, 10\u22125, "
                 "10[\u2212][11], 1e \u2212 11, \\frac{5}{2^{3.0} \\times 10^3}, a trailing % allowed")


# --- printed forms ------------------------------------------------------------------------------


def kilo(suffix: str, quantity: str) -> int | None:
    """What ``k``/``K`` after a number multiplies it by, in a number of `quantity`: 1,024 in a batch
    size (either case: You et al. print 32K and 1k), 1,000 for a lowercase ``k`` elsewhere (You et al.'s
    1000k steps), None for a capital ``K`` elsewhere (no paper prints one: which it means is unknown)."""
    if quantity == "batch_size":
        return KILO_BATCH
    return KILO if suffix == "k" else None


def _product(text: str) -> float | None:
    """The value of a product of decimals and powers (``2^{3.0} \\times 10^3`` = 8000), None for
    anything else."""
    value = 1.0
    for factor in _TIMES.split(text):
        match = _FACTOR.fullmatch(factor.strip())
        if match is None:
            return None
        base, exponent = float(match.group(1)), match.group(2) or match.group(3)
        value *= base ** float(exponent) if exponent is not None else base
    return value


def printed_value(printed: str, quantity: str) -> float | None:
    """The number a printed token stands for in a number of `quantity`, or None for a form not read.

    Forms (README.md of reference_results/published): plain and scientific decimals as they are
    (``75.97``, ``1e-4``), thousands separated by commas (``32,768``), ``NK``/``Nk`` in a batch size
    = N x 1024 and ``Nk`` elsewhere = N x 1000 (``kilo``), ``NM`` outside a batch size = N x 10^6,
    LaTeX powers of ten (``5 \\times 10^{-5}``, ``10^{-4}``) and fractions of products of powers
    (``\\frac{5}{2^{3.0} \\times 10^3}``), and the text extraction's superscripts ``10−5`` and
    ``10[−][11]`` and exponent ``1e − 11`` (with the minus U+2212); elsewhere ``−`` reads as a minus,
    and a trailing ``%`` is dropped (a percentage keeps its number).
    """
    stripped = printed.strip()
    for form in (_FLAT_POWER, _BRACKET_POWER):
        if power := form.fullmatch(stripped):
            return float(f"{power.group(1) or '1'}e-{power.group(2)}")
    if spaced := _SPACED_EXPONENT.fullmatch(stripped):
        return float(f"{spaced.group(1)}e-{spaced.group(2)}")
    if fraction := _FRACTION.fullmatch(stripped):
        numerator, denominator = _product(fraction.group(1)), _product(fraction.group(2))
        if numerator is None or not denominator:
            return None
        return numerator / denominator
    text = stripped.replace("\u2212", "-").removesuffix("%").strip()
    if _PLAIN.fullmatch(text):
        return float(text)
    if _THOUSANDS.fullmatch(text):
        return float(text.replace(",", ""))
    if thousands := _KILO.fullmatch(text):
        factor = kilo(thousands.group(2), quantity)
        return None if factor is None else float(thousands.group(1)) * factor
    if millions := _MEGA.fullmatch(text):
        return None if quantity == "batch_size" else float(millions.group(1)) * MEGA
    if power := _POWER.fullmatch(text):
        mantissa, exponent = power.group(1) or "1", power.group(2)
        return float(f"{mantissa}e{exponent}")
    return None


def is_power_of_two(value: float) -> bool:
    """Whether `value` is 2^n for a whole n >= 0 (1, 2, 4, ..., 32768, ...)."""
    return value >= 1 and value.is_integer() and int(value) & (int(value) - 1) == 0


def printed_in_quote(printed: str, quote: str) -> bool:
    """Whether `printed` occurs in `quote` as a whole number: not preceded by a digit or ``.``, not
    followed by a digit, ``.`` + digit or a multiplier ``K``, ``k``, ``M`` (so ``5.9`` is not found in
    ``75.9``, nor ``16`` in ``16K`` or ``16k``)."""
    pattern = rf"(?<![\d.]){re.escape(printed)}(?!\d|\.\d|[kKM])"
    return re.search(pattern, quote) is not None


def parse_value(text: str) -> float | None:
    """A ``value`` cell as a float (a plain or scientific decimal), None for anything else."""
    return float(text) if _PLAIN.fullmatch(text.strip()) else None


# --- loading and checking -----------------------------------------------------------------------


def check_record(path: str, record: Mapping[str, str]) -> float:
    """UserError (file, line, column) for the first problem of one record; its value otherwise."""
    line = int(record[LINE])

    def at(column: str) -> str:
        return datafiles.where(path, line, column)

    for column in REQUIRED:
        if not record[column].strip():
            raise UserError(f"{at(column)}: empty; every number needs {', '.join(REQUIRED)}")
    value = parse_value(record["value"])
    if value is None or not math.isfinite(value):
        raise UserError(f"{at('value')}: {record['value']!r} is not a number; write it as a plain decimal "
                        "(75.97, 32768, 0.0001)")
    quantity = record["quantity"]
    if quantity not in QUANTITIES:
        raise UserError(f"{at('quantity')}: unknown quantity {quantity!r}; one of {', '.join(QUANTITIES)}")
    printed = record["printed"]
    expected = printed_value(printed, quantity)
    if expected is None:
        raise UserError(f"{at('printed')}: {printed!r} is not a printed form read here in a number of quantity "
                        f"{quantity} ({PRINTED_FORMS})")
    if not math.isclose(value, expected, rel_tol=1e-9, abs_tol=0.0):
        raise UserError(f"{at('value')}: {record['value']} but printed {printed!r} is {expected:.12g}; the value "
                        "is the printed number (NK = N x 1024 in a batch size, Nk = N x 1000 elsewhere, a "
                        "percentage keeps its number)")
    if quantity == "batch_size" and _KILO.fullmatch(printed.strip()) and not is_power_of_two(expected):
        raise UserError(f"{at('printed')}: {printed!r} reads {expected:.12g}, not a power of two: the paper "
                        "rounds (Nado et al.'s 65k is 65,536, not 65 x 1,024); leave it out, or take the batch "
                        "size from a place that prints it exactly")
    if record["unit"] not in UNITS:
        raise UserError(f"{at('unit')}: unknown unit {record['unit']!r}; one of "
                        f"{', '.join(u for u in UNITS if u)} or empty")
    metric = record["metric"]
    if quantity in METRIC_QUANTITIES and metric not in METRICS:
        raise UserError(f"{at('metric')}: {'empty' if not metric else f'unknown metric {metric!r}'}; a number of "
                        f"quantity {quantity} says which metric it is: one of {', '.join(METRICS)} "
                        "(reference_results/published/README.md)")
    if quantity not in METRIC_QUANTITIES and metric:
        raise UserError(f"{at('metric')}: {metric!r} on a number of quantity {quantity}; only quantities "
                        f"{' and '.join(METRIC_QUANTITIES)} name a metric: leave it empty")
    if metric and record["unit"] not in METRIC_UNITS[metric]:
        units = " or ".join(repr(u) for u in METRIC_UNITS[metric])
        raise UserError(f"{at('unit')}: {record['unit']!r} for metric {metric}, whose unit is {units}; fix the "
                        "unit or the metric")
    quote = record["quote"]
    if len(quote) > QUOTE_MAX_CHARS:
        raise UserError(f"{at('quote')}: {len(quote)} characters; at most {QUOTE_MAX_CHARS}")
    if not printed_in_quote(printed, quote):
        raise UserError(f"{at('printed')}: {printed!r} does not occur in the quote as a number; quote the "
                        "text around it, or print it as the quote does")
    if os.path.basename(record["source"]) != record["source"]:
        raise UserError(f"{at('source')}: {record['source']!r} is not a file name; name the text file "
                        "of the papers directory (e.g. nado2021_reality_check.md)")
    if record["workload"]:
        datafiles.check_workload(record["workload"], at("workload"))
    if record["submission"]:
        datafiles.check_submission(record["submission"], at("submission"))
    if record["config"]:
        datafiles.check_config(record["config"], at("config"))
    return value


def load_file(path: str) -> pd.DataFrame:
    """The checked records of one published file (columns paper, line, ``COLUMNS``; ``value`` a
    float). UserError naming the file, line and column of the first problem."""
    frame = datafiles.read_csv(path, COLUMNS)
    values = [check_record(path, record) for record in frame.to_dict("records")]
    return frame.assign(value=pd.Series(values, index=frame.index, dtype=float))


def load(directory: str | None = None) -> pd.DataFrame:
    """Every published file of `directory` (default ``PUBLISHED_DIR``), checked, in one frame
    (columns paper, line, ``COLUMNS``), papers in the order of ``datafiles.PAPERS``; empty when
    the directory does not exist."""
    frames = [load_file(path) for path in datafiles.csv_paths(directory or PUBLISHED_DIR)]
    empty = pd.DataFrame(columns=[PAPER, LINE, *COLUMNS])
    return pd.concat(frames, ignore_index=True) if frames else empty


# --- the papers' text ---------------------------------------------------------------------------


def papers_dir() -> str | None:
    """The directory of the papers' text files: $PAPERS_DIR, else ../shared/papers beside the
    repository, else /work/shared/papers; None when none exists (CI has no papers). A $PAPERS_DIR
    that is not a directory is a UserError."""
    env = os.environ.get(PAPERS_DIR_ENV)
    if env:
        if not os.path.isdir(env):
            raise UserError(f"${PAPERS_DIR_ENV}={env} is not a directory; point it at the papers' text files "
                            "or unset it")
        return env
    for candidate in (os.path.join(os.path.dirname(REPO), "shared", "papers"), "/work/shared/papers"):
        if os.path.isdir(candidate):
            return candidate
    return None


def collapse(text: str) -> str:
    """`text` with every run of whitespace one space, stripped: how quotes are compared."""
    return " ".join(text.split())


def quote_problems(numbers: pd.DataFrame, directory: str) -> list[str]:
    """One line per published number whose quote is not in its source file of `directory` (both
    whitespace-collapsed) or whose source file is missing; empty when every quote is found."""
    texts: dict[str, str | None] = {}
    problems = []
    for r in numbers.itertuples():
        if r.source not in texts:
            path = os.path.join(directory, r.source)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    texts[r.source] = collapse(f.read())
            else:
                texts[r.source] = None
        place = f"reference_results/published/{r.paper}.csv line {r.line}"
        text = texts[r.source]
        if text is None:
            problems.append(f"{place} column source: {r.source} is not in {directory}")
        elif collapse(r.quote) not in text:
            problems.append(f"{place} column quote: not in {r.source}: {r.quote!r}")
    return problems


# --- printing -----------------------------------------------------------------------------------


def format_number(value: float) -> str:
    """A value as the shortest decimal that reads back as it (integers without a point)."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def plain(text: str) -> str:
    """A row or column name of the papers' files as plain text: the files keep the papers' LaTeX
    (``Adam ( $\\epsilon = 10^{-6}$ )``, as transcribed), tables and pages show ``Adam (ϵ = 10^-6)``.
    pylatexenc's LaTeX-to-text conversion does the math (a hand-written one would miss macros)."""
    from pylatexenc.latex2text import LatexNodes2Text  # lazily: only display needs it

    if "$" not in text and "\\" not in text:
        return text
    converted = LatexNodes2Text(math_mode="text").latex_to_text(text)
    return re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", " ".join(converted.split())))


def format_value(value: float, unit: str) -> str:
    """A value with its unit: ``75.97%``, ``32768 examples``, ``0.0001``; an accuracy the paper prints
    as a fraction stays as printed (``0.9941``: the word adds nothing)."""
    number = format_number(value)
    if unit == "%":
        return number + "%"
    return f"{number} {unit}" if unit and unit != "fraction" else number


def select(numbers: pd.DataFrame, paper: str | None = None, workload: str | None = None) -> pd.DataFrame:
    """The numbers of one paper and/or one workload (all when None); UserError for a paper not in
    ``PAPERS`` or a workload not registered."""
    if paper is not None:
        if paper not in PAPERS:
            raise UserError(f"unknown paper {paper!r}; known papers: {', '.join(PAPERS)}")
        numbers = numbers[numbers[PAPER] == paper]
    if workload is not None:
        known = datafiles.registered_workloads()
        if workload not in known:
            raise UserError(f"unknown workload {workload!r}; known workloads: {', '.join(sorted(known))}")
        numbers = numbers[numbers["workload"] == workload]
    return numbers


def table(numbers: pd.DataFrame) -> str:
    """The numbers as a fixed-width table: paper, table, row, column, value with unit, metric,
    workload, config; and a line counting them."""
    from scoring.render import fixed_width_table

    headers = ("paper", "table", "row", "column", "value", "metric", "workload", "config")
    rows = [(r.paper, r.table, plain(r.row), plain(r.column), format_value(r.value, r.unit), r.metric or "-",
             r.workload or "-", r.config or "-") for r in numbers.itertuples()]
    lines = fixed_width_table(headers, rows, "<<<<><<<", shrinkable=(1, 2, 3, 5, 6, 7))
    papers = ", ".join(f"{PAPERS[p]} ({p})" for p in dict.fromkeys(numbers[PAPER]))
    lines.append(f"{len(numbers)} published number(s){' of ' + papers if papers else ''}: "
                 "reference_results/published/<paper>.csv")
    return "\n".join(lines) + "\n"
