"""Which of the papers' experiments the suite can run: reference_results/coverage/<paper>.csv, one row
per experiment (a table, a figure, or a group of them asking one question) with its status, the
workloads and named configs reproducing it, and what is missing (the format:
reference_results/published/README.md). ``python -m scoring coverage`` renders every file into
reference_results/COVERAGE.md; a test checks the committed file equals the rendering.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import pandas as pd

from harness.errors import UserError
from scoring import datafiles
from scoring.datafiles import LINE, PAPER, PAPERS, REPO

#: The columns of a coverage file, in order.
COLUMNS: tuple[str, ...] = ("experiment", "tables", "status", "workloads", "configs", "reason")
#: Each status and what it means (the legend of COVERAGE.md).
STATUSES: dict[str, str] = {
    "runs-here": "a CPU workload of the suite asks the same question at its scale",
    "full-scale": "the suite has the workload and configs, but it needs data or hardware not here "
                  "(ImageNet, the BERT corpus, TPU pods)",
    "partial": "some rows or settings only",
    "impossible": "the suite cannot run it (a downstream task, another dataset or model)",
}
#: Statuses that name the suite's workloads by definition (the others may leave them empty).
WITH_WORKLOADS: tuple[str, ...] = ("runs-here", "full-scale")

COVERAGE_DIR = os.path.join(REPO, "reference_results", "coverage")
COVERAGE_MD = os.path.join(REPO, "reference_results", "COVERAGE.md")


def check_record(path: str, record: Mapping[str, str]) -> None:
    """UserError (file, line, column) for the first problem of one coverage record."""
    line = int(record[LINE])

    def at(column: str) -> str:
        return datafiles.where(path, line, column)

    for column in ("experiment", "tables"):
        if not record[column].strip():
            raise UserError(f"{at(column)}: empty; every experiment needs a title and its tables")
    status = record["status"]
    if status not in STATUSES:
        raise UserError(f"{at('status')}: unknown status {status!r}; one of {', '.join(STATUSES)}")
    names = datafiles.split_list(record["workloads"])
    if status in WITH_WORKLOADS and not names:
        raise UserError(f"{at('workloads')}: empty, but status {status} means the suite has the workload; "
                        "name it, or choose another status")
    for name in names:
        datafiles.check_workload(name, at("workloads"))
    for name in datafiles.split_list(record["configs"]):
        datafiles.check_config(name, at("configs"))
    if status != "runs-here" and not record["reason"].strip():
        raise UserError(f"{at('reason')}: empty; status {status} needs the reason: what is missing (data, "
                        "hardware, a task) or what part is covered")


def load_file(path: str) -> pd.DataFrame:
    """The checked records of one coverage file (columns paper, line, ``COLUMNS``)."""
    frame = datafiles.read_csv(path, COLUMNS)
    for record in frame.to_dict("records"):
        check_record(path, record)
    return frame


def load(directory: str | None = None) -> pd.DataFrame:
    """Every coverage file of `directory` (default ``COVERAGE_DIR``), checked, in one frame
    (columns paper, line, ``COLUMNS``), papers in the order of ``datafiles.PAPERS``; empty when the
    directory does not exist."""
    frames = [load_file(path) for path in datafiles.csv_paths(directory or COVERAGE_DIR)]
    empty = pd.DataFrame(columns=[PAPER, LINE, *COLUMNS])
    return pd.concat(frames, ignore_index=True) if frames else empty


def unknown_tables(coverage: pd.DataFrame, numbers: pd.DataFrame) -> list[str]:
    """One line per table id of a coverage row that no published number of its paper names (the
    ids are spelled as in the published file), for the papers with a published file."""
    problems = []
    for r in coverage.itertuples():
        named = set(numbers.loc[numbers[PAPER] == r.paper, "table"])
        if not named:
            continue
        for table_id in datafiles.split_list(r.tables):
            if table_id not in named:
                problems.append(f"reference_results/coverage/{r.paper}.csv line {r.line} column tables: "
                                f"{table_id!r} is no table of reference_results/published/{r.paper}.csv")
    return problems


def uncovered_tables(coverage: pd.DataFrame, numbers: pd.DataFrame) -> list[str]:
    """One line per table of a published file that no experiment of its paper's coverage file
    covers, for the papers with a coverage file."""
    problems: list[str] = []
    for paper, tables in numbers.groupby(PAPER, sort=False)["table"]:
        rows = coverage[coverage[PAPER] == paper]
        if rows.empty:
            continue
        covered = {t for cell in rows["tables"] for t in datafiles.split_list(cell)}
        problems.extend(f"reference_results/published/{paper}.csv: {t!r} is in no experiment of "
                        f"reference_results/coverage/{paper}.csv"
                        for t in dict.fromkeys(tables) if t not in covered)
    return problems


# --- COVERAGE.md --------------------------------------------------------------------------------


HEADER = ("<!-- Generated by `python -m scoring coverage` from reference_results/coverage/*.csv: do not edit "
          "by hand. Edit the CSV files and run the command again (a test checks this file equals the "
          "rendering). -->")


def _workloads_cell(workloads: str, configs: str) -> str:
    parts = []
    if names := datafiles.split_list(workloads):
        parts.append(", ".join(f"`{n}`" for n in names))
    if names := datafiles.split_list(configs):
        parts.append("configs " + ", ".join(f"`{n}`" for n in names))
    return "; ".join(parts) or "-"


def summary(coverage: pd.DataFrame) -> str:
    """The count of experiments per status, per paper and in all, as a Markdown table."""
    from scoring.render import markdown_table

    def counts(rows: pd.DataFrame) -> list[str]:
        return [str(int((rows["status"] == s).sum())) for s in STATUSES] + [str(len(rows))]

    body = [[f"{PAPERS[p]}", *counts(rows)] for p, rows in coverage.groupby(PAPER, sort=False)]
    body.append(["all", *counts(coverage)])
    return markdown_table(("Paper", *STATUSES, "experiments"), body, frozenset(range(1, len(STATUSES) + 2)))


def render(coverage: pd.DataFrame) -> str:
    """COVERAGE.md: the header, what the statuses mean, the counts per status, then per paper a
    table of its experiments (experiment, tables, status, workloads and configs, reason)."""
    from scoring.render import markdown_table

    parts = [HEADER + "\n", "# Coverage: the papers' experiments in this suite\n",
             "Generated by `python -m scoring coverage` from `reference_results/coverage/<paper>.csv` (format: "
             "[published/README.md](published/README.md)); do not edit it by hand. The published numbers "
             "themselves are in `reference_results/published/` (`python -m scoring published`).\n",
             "Status:\n\n" + "".join(f"- `{s}`: {meaning}\n" for s, meaning in STATUSES.items()),
             summary(coverage)]
    if coverage.empty:
        parts.append("No coverage file yet.\n")
    for paper, rows in coverage.groupby(PAPER, sort=False):
        parts.append(f"## {PAPERS[paper]} (`{paper}`)\n")
        body = [[r.experiment, ", ".join(datafiles.split_list(r.tables)), r.status,
                 _workloads_cell(r.workloads, r.configs), r.reason or "-"] for r in rows.itertuples()]
        parts.append(markdown_table(("Experiment", "Tables", "Status", "Workloads / configs", "Reason"), body))
    return "\n".join(parts)


def write(path: str, directory: str | None = None) -> str:
    """Render the coverage files of `directory` (default ``COVERAGE_DIR``) into `path` (UserError
    when it cannot be written); the path written."""
    from scoring.render import write_file

    return write_file(path, render(load(directory)).encode("utf-8"))
