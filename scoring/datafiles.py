"""The CSV files of reference_results/ about the papers (published numbers, coverage): reading one
with each record's line number, and the checks both kinds share (the paper a file is about, a
registered workload, a built-in submission, a named config).

Every error is a one-line UserError naming the file, the line and the column, and what to write
instead. The files are read with the csv module and handed on as pandas DataFrames of strings:
pandas' reader fills a record with too few fields silently and does not give a record's line, and
the errors must name both.
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Iterable, Sequence

import pandas as pd

from harness.errors import UserError
from harness.submission_loader import SUBMISSIONS_DIR, builtin_names

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The papers (file stem of reference_results/published/<paper>.csv and coverage/<paper>.csv) and
#: how rows and tables cite them.
PAPERS: dict[str, str] = {
    "nado2021": "Nado et al. 2021",
    "you2019": "You et al. 2019",
    "agarwal2020": "Agarwal et al. 2020",
}

#: The column holding each record's line in the file (the header is line 1).
LINE = "line"
#: The column holding the paper (file stem) of each record.
PAPER = "paper"


def display_path(path: str) -> str:
    """`path` relative to the repository when it is inside it (how errors name files)."""
    relative = os.path.relpath(os.path.abspath(path), REPO)
    return path if relative.startswith(os.pardir) else relative


def where(path: str, line: int, column: str | None = None) -> str:
    """``reference_results/published/x.csv line 4 column unit``: the place an error names."""
    return f"{display_path(path)} line {line}" + (f" column {column}" if column else "")


def paper_of(path: str) -> str:
    """The paper a file is about (its stem); UserError unless it is one of ``PAPERS``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem not in PAPERS:
        raise UserError(f"{display_path(path)}: unknown paper {stem!r}; name the file after one of "
                        f"{', '.join(PAPERS)} (.csv)")
    return stem


def csv_paths(directory: str) -> list[str]:
    """The .csv files of `directory`, in the order of ``PAPERS`` (UserError for another name); none
    when the directory does not exist (no paper transcribed yet)."""
    if not os.path.isdir(directory):
        return []
    paths = [os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".csv")]
    order = list(PAPERS)
    return sorted(paths, key=lambda p: order.index(paper_of(p)))


def read_csv(path: str, columns: Sequence[str]) -> pd.DataFrame:
    """The records of the CSV file at `path` as strings, with ``columns`` (the header must be
    exactly these, in this order) and the paper and the line of each record in front.

    UserError (one line, naming the file and line) for a file that is not UTF-8 CSV, another
    header, a record with another number of fields, or a field holding a line break (fields are
    one line: quotes are whitespace-collapsed text). Blank lines are skipped.
    """
    paper = paper_of(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            records = _records(path, f, columns)
    except UnicodeDecodeError as e:
        raise UserError(f"{display_path(path)}: not UTF-8 ({e.reason} at byte {e.start}); save it as "
                        "UTF-8") from None
    except OSError as e:
        raise UserError(f"{display_path(path)}: cannot read it: {e.strerror or e}") from None
    frame = pd.DataFrame([fields for _, fields in records], columns=list(columns), dtype=str)
    frame.insert(0, LINE, [line for line, _ in records])
    frame.insert(0, PAPER, paper)
    return frame


def _records(path: str, f: Iterable[str], columns: Sequence[str]) -> list[tuple[int, list[str]]]:
    """(line, fields) of each record of the open file `f` after its header (read_csv's checks)."""
    reader = csv.reader(f, strict=True)
    records: list[tuple[int, list[str]]] = []
    last_line = 0
    header = False
    try:
        for fields in reader:
            line, last_line = last_line + 1, reader.line_num
            if not fields:
                continue
            if not header:
                if [c.strip() for c in fields] != list(columns):
                    raise UserError(f"{where(path, line)}: the columns must be {', '.join(columns)} in this "
                                    f"order; got {', '.join(fields)}")
                header = True
                continue
            if len(fields) != len(columns):
                raise UserError(f"{where(path, line)}: {len(fields)} fields, the header has {len(columns)}; "
                                "quote fields that contain commas (\"...\") and give every column, empty "
                                "or not")
            for column, value in zip(columns, fields):
                if "\n" in value or "\r" in value:
                    raise UserError(f"{where(path, line, column)}: the field holds a line break; write it "
                                    "on one line (whitespace collapsed)")
            records.append((line, fields))
    except csv.Error as e:
        raise UserError(f"{where(path, last_line + 1)}: malformed CSV: {e}; quote fields that contain "
                        "commas or quotes, doubling the quotes inside") from None
    if not header:
        raise UserError(f"{display_path(path)}: empty file; the first line is the header "
                        f"{','.join(columns)}")
    return records


def split_list(cell: str) -> list[str]:
    """The items of a ``;``-separated cell, stripped, empty ones dropped."""
    return [item.strip() for item in cell.split(";") if item.strip()]


@functools.cache
def registered_workloads() -> frozenset[str]:
    """The names registered in workloads/__init__.py (imports the workload modules, hence JAX:
    only when a file names a workload)."""
    import workloads

    return frozenset(workloads.workload_names())


def check_workload(name: str, place: str) -> None:
    """UserError at `place` unless `name` is a registered workload."""
    known = registered_workloads()
    if name not in known:
        raise UserError(f"{place}: unknown workload {name!r}; use a name registered in workloads/__init__.py "
                        f"({', '.join(sorted(known))}) or leave it empty")


def check_submission(name: str, place: str) -> None:
    """UserError at `place` unless `name` is a built-in submission (a directory of submissions/)."""
    known = builtin_names()
    if name not in known:
        raise UserError(f"{place}: unknown submission {name!r}; use a built-in submission "
                        f"({', '.join(known)}) or leave it empty")


def config_path(name: str) -> str:
    """The file of the named config ``submission/config``: submissions/<submission>/configs/<config>.json."""
    submission, _, config = name.partition("/")
    return os.path.join(SUBMISSIONS_DIR, submission, "configs", config + ".json")


def check_config(name: str, place: str) -> None:
    """UserError at `place` unless `name` is ``submission/config`` naming an existing config file
    of a built-in submission (harness/configs.py)."""
    submission, slash, config = name.partition("/")
    if not slash or not submission or not config or "/" in config:
        raise UserError(f"{place}: config {name!r} is not submission/config; write e.g. nesterov/config_a")
    check_submission(submission, place)
    if not os.path.isfile(config_path(name)):
        configs_dir = os.path.dirname(config_path(name))
        known = sorted(os.path.splitext(f)[0] for f in os.listdir(configs_dir) if f.endswith(".json")) \
            if os.path.isdir(configs_dir) else []
        raise UserError(f"{place}: unknown config {name!r}; configs of {submission}: "
                        f"{', '.join(known) or 'none'} (submissions/{submission}/configs/)")
