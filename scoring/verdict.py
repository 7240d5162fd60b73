"""The verdict of tuning studies: each compared study's confirmation beside the papers' published
numbers for the same comparison, the paired test between the compared studies, and whether the
workload's target separates them at all.

The comparisons are data, a JSON file (docs/studies/verdict.json for issue 15)::

    {"title": "...",
     "questions": [{"question": "Does Nesterov match LARS?", "workload": "fashion_mnist_resnet",
                    "rows": [{"label": "Nesterov", "study": "issue15/fashion_mnist_resnet/nesterov",
                              "published": [{"paper": "nado2021", "table": "Section 2.1",
                                             "row": "Configuration A"}]}, ...],
                    "pairs": [["Nesterov", "LARS"]]}]}

A row's `published` entries name rows of reference_results/published/<paper>.csv by table and row
(and column, optionally); every number there is shown with its column and unit.

Per study: the feasible trials, the confirmation seeds finished of those asked for, the median best
validation metric with its exact order-statistic interval, the seeds that reached the target with a
95% Wilson interval, the median steps to target (a miss counts as inf, as on the leaderboard) and the
machine time the study took (wall seconds summed over the processes that ran it, compilation
included). A study not in the database yet is listed as such, so the page can be written while the
studies run. Pairs share the confirmation seeds 0..K-1, so they are compared seed by seed
(scoring/compare.py: sign and Wilcoxon tests).

``python -m scoring verdict --spec=docs/studies/verdict.json [--results=DB] [--out=PREFIX]`` prints
the Markdown and writes PREFIX.md and PREFIX.png (the confirmation distributions, one panel per
question).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness import json_files
from harness.errors import UserError
from harness.formatting import format_metric, is_accuracy
from harness.store import ResultsReader
from scoring import aggregate, compare, published, statistics
from scoring.render import format_fraction_interval, format_metric_interval, format_steps, markdown_table
from scoring.study import StudyReport, load

#: Keys of a published entry: which rows of a paper's file it names.
PUBLISHED_KEYS = ("paper", "table", "row", "column")
#: The kinds of published number a verdict shows (not the hyperparameters of the named rows).
SHOWN_QUANTITIES = ("metric", "count", "target")


@dataclasses.dataclass(frozen=True)
class Row:
    label: str
    study: str
    published: tuple[Mapping[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Question:
    question: str
    workload: str
    rows: tuple[Row, ...]
    pairs: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Spec:
    title: str
    questions: tuple[Question, ...]


def _require(mapping: Any, key: str, kind: type, where: str) -> Any:
    """mapping[key] of type `kind`; a one-line UserError naming the place otherwise."""
    if not isinstance(mapping, dict) or not isinstance(mapping.get(key), kind):
        raise UserError(f"{where}: needs {key!r} ({kind.__name__}); see scoring/verdict.py for the format")
    return mapping[key]


def load_spec(path: str) -> Spec:
    """The comparisons of a verdict file (module docstring); one-line UserErrors naming the place."""
    data = json_files.read(path, f"verdict file {path}", "pass --spec=FILE.json")
    questions = []
    for i, q in enumerate(_require(data, "questions", list, path)):
        where = f"{path} question {i + 1}"
        rows = []
        for j, r in enumerate(_require(q, "rows", list, where)):
            row_where = f"{where} row {j + 1}"
            entries = tuple(r.get("published", [])) if isinstance(r, dict) else ()
            for entry in entries:
                keys = set(entry) if isinstance(entry, dict) else set()
                if keys - set(PUBLISHED_KEYS) or not {"paper", "table", "row"} <= keys:
                    raise UserError(f"{row_where}: a published entry has keys paper, table, row and optionally "
                                    f"column, got {entry!r}")
            rows.append(Row(_require(r, "label", str, row_where), _require(r, "study", str, row_where), entries))
        labels = [r.label for r in rows]
        pairs = []
        for pair in q.get("pairs", []):
            if not (isinstance(pair, list) and len(pair) == 2 and all(p in labels for p in pair)):
                raise UserError(f"{where}: a pair is two of the row labels {labels}, got {pair!r}")
            pairs.append((pair[0], pair[1]))
        questions.append(Question(_require(q, "question", str, where), _require(q, "workload", str, where),
                                  tuple(rows), tuple(pairs)))
    return Spec(str(data.get("title", "Verdict")), tuple(questions))


def published_numbers(numbers: pd.DataFrame, entry: Mapping[str, str]) -> pd.DataFrame:
    """The published results (SHOWN_QUANTITIES) an entry names; UserError when it names none (a
    typo must not read as 'the paper has nothing to say')."""
    chosen = published.select(numbers, entry["paper"])
    chosen = chosen[chosen["quantity"].isin(SHOWN_QUANTITIES)]
    for key in ("table", "row", "column"):
        if key in entry:
            chosen = chosen[chosen[key] == entry[key]]
    if chosen.empty:
        raise UserError(f"no published number matches {dict(entry)}; `python -m scoring published "
                        f"--paper={entry['paper']}` lists the tables and rows")
    return chosen


def published_cell(numbers: pd.DataFrame, entries: Sequence[Mapping[str, str]]) -> str:
    """'<Paper> <table>, <row>: <column> <value>; ...' for a row's published entries ('-' for none)."""
    parts = []
    for entry in entries:
        chosen = published_numbers(numbers, entry)
        values = "; ".join(f"{published.plain(r.column)} {published.format_value(r.value, r.unit)}"
                           for r in chosen.itertuples())
        parts.append(f"{published.PAPERS[entry['paper']]} {entry['table']}, {published.plain(entry['row'])}: "
                     f"{values}")
    return " / ".join(parts) or "-"


def steps_to_target(report: StudyReport) -> list[float]:
    """Steps to target per confirmation seed, a miss as inf (as the leaderboard counts it)."""
    return aggregate.misses_as_inf(report.confirmation["steps_to_target"]).astype(float).tolist()


def study_cells(report: StudyReport) -> list[str]:
    """trials, seeds, median best valid [interval], reached k/K [Wilson], median steps, machine time."""
    s, c = report.study, report.confirmation
    fmt = lambda v: format_metric(v, report.metric)  # noqa: E731
    diverged = int(s["trials_run"] - s["feasible_trials"])
    trials = f"{int(s['feasible_trials'])}/{int(s['trials'])}" + (f" (+{diverged} diverged)" if diverged else "")
    seeds = f"{len(c)}/{int(s['confirm_seeds'])}"
    if s["status"] == "exhausted":  # every trial it may run diverged: nothing selected, nothing to confirm
        seeds = "none: every trial diverged"
    if c.empty:
        return [trials, seeds, "-", "-", "-", f"{s['wall_seconds'] / 3600:.1f} h"]
    low, high, level = statistics.median_interval(c["best_valid"].dropna())
    median = f"{fmt(report.confirmation_median)} {format_metric_interval(low, high, level, report.metric)}"
    k, n = report.confirmation_reached, len(c)
    reached = f"{k}/{n} {format_fraction_interval(*statistics.wilson_interval(k, n))}"
    steps = format_steps(aggregate.median_with_misses(c["steps_to_target"]))
    return [trials, seeds, median, reached, steps, f"{s['wall_seconds'] / 3600:.1f} h"]


def paired(a: StudyReport, b: StudyReport, labels: tuple[str, str]) -> compare.Comparison | None:
    """The two studies' confirmation seeds compared seed by seed (None when they share none)."""
    sides = [pd.DataFrame({"valid": r.confirmation["best_valid"].astype(float).to_numpy(),
                           "steps": steps_to_target(r)}, index=r.confirmation["seed"].astype(int))
             for r in (a, b)]
    seeds = sorted(set(sides[0].index) & set(sides[1].index))
    if not seeds:
        return None
    pa, pb = (side.loc[seeds] for side in sides)
    return compare.Comparison(str(a.study["workload"]), labels[0], labels[1], a.metric, a.direction, seeds,
                              pa["valid"].tolist(), pb["valid"].tolist(), pa["steps"].tolist(),
                              pb["steps"].tolist())


def paired_line(c: compare.Comparison) -> str:
    """One sentence: who is better on how many seeds, with the sign and Wilcoxon p-values, and who
    reached the target first."""
    better, differ = c.a_better
    faster, decided = c.a_faster
    d = c.valid_differences
    first = (f"reaches the target first on {faster} of {decided} (sign test p = {c.steps_sign_p:.3g})"
             if decided else "neither reaches the target before the other on any seed")
    return (f"{c.a} vs {c.b} on {len(c.seeds)} paired seeds: {c.a} has the better best valid on {better} of "
            f"{differ} (sign test p = {statistics.sign_test(d):.3g}, Wilcoxon p = "
            f"{statistics.wilcoxon_test(d):.3g}), {first}.")


def separation(reports: Sequence[StudyReport]) -> str | None:
    """A sentence when the target cannot separate the studies: every confirmation seed of every
    study reached it, or none did (None otherwise or before every study has seeds)."""
    if not reports or any(r.confirmation.empty for r in reports):
        return None
    counts = [(r.confirmation_reached, len(r.confirmation)) for r in reports]
    target = format_metric(reports[0].target, reports[0].metric)
    if all(k == n for k, n in counts):
        return (f"The target ({target}) does not separate these optimizers: every seed of every study reached it "
                f"({', '.join(f'{k}/{n}' for k, n in counts)}); compare the medians and the steps to target.")
    if all(k == 0 for k, _ in counts):
        return f"The target ({target}) does not separate these optimizers: no seed of any study reached it."
    return None


def load_reports(results: str, spec: Spec) -> dict[str, StudyReport]:
    """The reports of the spec's studies that the database holds with a finished trial."""
    with ResultsReader(results) as reader:
        present = set(reader.studies()["name"])
    reports = {}
    for q in spec.questions:
        for r in q.rows:
            if r.study in present and r.study not in reports:
                try:
                    reports[r.study] = load(results, r.study)
                except UserError:  # recorded, but no trial has finished yet
                    continue
    return reports


HEADERS = ("optimizer", "feasible trials", "seeds", "median best valid [95% CI]", "reached target [95% CI]",
           "median steps to target", "machine time", "published")


def markdown(spec: Spec, reports: Mapping[str, StudyReport], numbers: pd.DataFrame) -> str:
    """The verdict page: per question a table of its studies beside the published numbers, the
    paired comparisons, and the separation sentence where it applies."""
    out = [f"# {spec.title}", ""]
    for q in spec.questions:
        mine = [reports[r.study] for r in q.rows if r.study in reports]
        target = (f", target {format_metric(mine[0].target, mine[0].metric)} {mine[0].metric}" if mine else "")
        out += [f"## {q.question}", "", f"`{q.workload}`{target}.", ""]
        rows = []
        for r in q.rows:
            cells = study_cells(reports[r.study]) if r.study in reports else ["not run yet"] + ["-"] * 5
            rows.append([f"{r.label} (`{r.study}`)", *cells, published_cell(numbers, r.published)])
        out += markdown_table(HEADERS, rows).splitlines() + [""]
        by_label = {r.label: reports.get(r.study) for r in q.rows}
        for a, b in q.pairs:
            ra, rb = by_label[a], by_label[b]
            c = paired(ra, rb, (a, b)) if ra is not None and rb is not None else None
            if c is not None:
                out += [f"- {paired_line(c)}"]
        sentence = separation(mine) if len(mine) == len(q.rows) else None
        if sentence:
            out += [f"- **{sentence}**"]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def png(spec: Spec, reports: Mapping[str, StudyReport]) -> bytes:
    """One panel per question: each study's best validation metric per confirmation seed (box and
    strip) against the target."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * len(spec.questions), 4.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(spec.questions)))
    rng = np.random.default_rng(0)
    for ax, q in zip(axes, spec.questions):
        labels, values = [], []
        for r in q.rows:
            report = reports.get(r.study)
            labels.append(r.label)
            values.append(report.confirmation["best_valid"].dropna().to_numpy(float) if report else np.array([]))
        for i, v in enumerate(values, start=1):
            if len(v):
                ax.boxplot(v, positions=[i], widths=0.5)
                ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=12, alpha=0.6, zorder=3)
        mine = [reports[r.study] for r in q.rows if r.study in reports]
        if mine:
            ax.axhline(mine[0].target, color="black", linestyle="--", linewidth=1,
                       label=f"target {format_metric(mine[0].target, mine[0].metric)}")
            ax.legend(fontsize="small", loc="lower right")
            if is_accuracy(mine[0].metric):
                from matplotlib.ticker import PercentFormatter

                ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax.set_ylabel(f"best valid {mine[0].metric} per seed")
        ax.set_xticks(range(1, len(labels) + 1), [f"{lab}\n({len(v)} seeds)" for lab, v in zip(labels, values)])
        ax.set_title(f"{q.workload}", fontsize="medium")
        ax.grid(True, axis="y", alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()

