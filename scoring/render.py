"""Leaderboard output: a fixed-width terminal table, Markdown, a self-contained HTML page and PNGs.

Inputs are the DataFrames of ``scoring.aggregate`` (``leaderboard`` and ``learning_curves``);
nothing here reads the database.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
import textwrap
from collections.abc import Sequence
from typing import Any

import pandas as pd

from harness.errors import UserError
from harness.formatting import format_metric, is_accuracy
from scoring import aggregate, compare, profile
from scoring.statistics import CONFIDENCE, FEW_SEEDS

TERMINAL_WIDTH = 120
_ELLIPSIS = "…"


# --- cell formatting ---------------------------------------------------------------------------


def format_rank(value: Any) -> str:
    """A row's rank, ``-`` for a row without one (no finished seed yet; scoring/aggregate.py)."""
    return "-" if pd.isna(value) else str(int(value))


def is_published(row: Any) -> bool:
    """Whether a leaderboard row is a paper's published number (scoring/published_board.py)."""
    return bool(row.published)


def published_cells(row: Any, headers: Sequence[str]) -> list[str]:
    """The cells of a published row under `headers`: its submission, label, description and the
    number in the best-valid column; ``-`` in every column measured here."""
    known = {"submission": row.submission, "config": row.config_id, "hparams": row.hparams,
             "best valid": row.published}
    return [str(known.get(h.lower(), "-")) for h in headers]


def unranked_note(row: Any) -> str:
    """Why a row has no rank: 'no finished seed yet' with its seeds' states, e.g. '(1 running)';
    a published number is never ranked."""
    if is_published(row):
        return "a published number, not measured here"
    states = [f"{int(n)} {state}" for state, n in (("running", row.running), ("interrupted", row.interrupted),
                                                   ("failed", row.failed)) if n]
    return "no finished seed yet" + (f" ({', '.join(states)})" if states else "")


def unranked_lines(rows: pd.DataFrame) -> list[str]:
    """One line per measured row of `rows` without a rank: 'submission [config]: not ranked, <why>'
    (a published row is never ranked: the footer says so once)."""
    return [f"{r.submission} [{r.config_id}]: not ranked, {unranked_note(r)}"
            for r in rows.itertuples() if pd.isna(r.rank) and not is_published(r)]


def format_steps(value: Any) -> str:
    """A step count: an integer, ``inf`` when the target was missed, ``-`` when unknown."""
    if value is None or math.isnan(float(value)):
        return "-"
    return "inf" if math.isinf(float(value)) else str(int(round(float(value))))


def _unknown(*values: Any) -> bool:
    return any(v is None or math.isnan(float(v)) for v in values)


def _level_mark(level: Any) -> str:
    """'*' on an interval below 95% (the widest one few seeds allow; the footer says its level)."""
    return "" if _unknown(level) or float(level) >= CONFIDENCE - 1e-9 else "*"


def format_interval(low: Any, high: Any, level: Any = CONFIDENCE) -> str:
    """A step interval ``[low, high]`` (``*`` when below 95%), ``-`` when unknown."""
    if _unknown(low, high):
        return "-"
    return f"[{format_steps(low)}, {format_steps(high)}]{_level_mark(level)}"


def format_metric_interval(low: Any, high: Any, level: Any, metric: str) -> str:
    """A metric interval ``[low, high]`` (``*`` when below 95%), ``-`` when unknown."""
    if _unknown(low, high):
        return "-"
    return f"[{format_metric(low, metric)}, {format_metric(high, metric)}]{_level_mark(level)}"


def format_fraction_interval(low: Any, high: Any) -> str:
    """A success-fraction interval in whole percents, ``-`` when unknown."""
    if _unknown(low, high):
        return "-"
    return f"[{format_fraction(low)}, {format_fraction(high)}]"


def format_seconds(value: Any) -> str:
    """Seconds with one decimal, ``inf`` for a miss, ``-`` when unknown."""
    if value is None or math.isnan(float(value)):
        return "-"
    return "inf" if math.isinf(float(value)) else f"{float(value):.1f}"


def format_fraction(value: Any) -> str:
    """A success fraction as a whole percent, ``-`` when unknown."""
    if value is None or math.isnan(float(value)):
        return "-"
    return f"{100.0 * float(value):.0f}%"


def group_name(tuning_budget: int, short: bool = False) -> str:
    """The comparison group of leaderboard rows (aggregate.sort_leaderboard): tuned rows compare
    at equal feasible-trial budgets, the others (defaults or named configs, whose tuning, if any,
    the results database does not record: a config written from a study is one) among themselves."""
    if tuning_budget:
        return f"tuned {tuning_budget}" if short else f"tuned, {tuning_budget} feasible trials per study"
    return "fixed" if short else "fixed hyperparameters: defaults or named configs, tuning not counted"


def sections(board: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per workload, batch size and tuning budget (aggregate.SECTION_KEYS), in the
    leaderboard's order; the title names the batch size where a workload has rows at several."""
    out = []
    labels = aggregate.workload_labels(board)
    for (_, _, budget), rows in board.groupby(list(aggregate.SECTION_KEYS), sort=False):
        out.append((f"{labels[rows.index[0]]} [{group_name(int(budget))}]", rows))
    return out


def workload_caption(rows: pd.DataFrame) -> str:
    """One line describing a section's metric, direction, target and global batch size (from its
    first row: a section has one batch size, aggregate.SECTION_KEYS)."""
    first = rows.iloc[0]
    return (f"metric {first['metric']} ({first['direction']}), "
            f"target {format_metric(first['target'], first['metric'])}, batch {int(first['global_batch_size'])}")


# --- terminal ----------------------------------------------------------------------------------


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + _ELLIPSIS


def fixed_width_table(headers: Sequence[str], rows: Sequence[Sequence[str]], aligns: str,
                      *, shrinkable: Sequence[int] = (), width: int = TERMINAL_WIDTH,
                      min_width: int = 6) -> list[str]:
    """Lines of a plain-text table, columns separated by two spaces (one when that is too wide).

    ``aligns`` holds one ``<`` or ``>`` per column. When the table is still wider than ``width``
    the columns listed in ``shrinkable`` are narrowed (widest first, down to ``min_width``) and
    their cells truncated with an ellipsis.
    """
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    gap = 2 if sum(widths) + 2 * (len(widths) - 1) <= width else 1
    while sum(widths) + gap * (len(widths) - 1) > width:
        candidates = [i for i in shrinkable if widths[i] > min_width]
        if not candidates:
            break
        widths[max(candidates, key=lambda i: widths[i])] -= 1

    def line(cells: Sequence[str]) -> str:
        parts = [_truncate(c, w).ljust(w) if a == "<" else _truncate(c, w).rjust(w)
                 for c, w, a in zip(cells, widths, aligns)]
        return (" " * gap).join(parts).rstrip()

    return [line(headers), (" " * gap).join("-" * w for w in widths), *(line(r) for r in rows)]


def terminal_table(board: pd.DataFrame, *, width: int = TERMINAL_WIDTH, notes: Sequence[str] = ()) -> str:
    """The leaderboard as plain fixed-width text, one section per workload, lines <= ``width``.

    Hyper-parameters are listed under each table, one line per configuration.
    """
    headers = ("#", "submission", "config", "seeds", "reached", "95% CI", "steps", "95% CI",
               "best valid", "95% CI", "train s", "div", "inc")
    out: list[str] = []
    for title, rows in sections(board):
        cells = [(format_rank(r.rank), str(r.submission), str(r.config_id), str(r.seeds), str(r.reached),
                  format_fraction_interval(r.success_ci_low, r.success_ci_high),
                  format_steps(r.median_steps), format_interval(r.steps_ci_low, r.steps_ci_high, r.steps_ci_level),
                  format_metric(r.median_best_valid, r.metric),
                  format_metric_interval(r.best_valid_ci_low, r.best_valid_ci_high, r.best_valid_ci_level,
                                         r.metric),
                  format_seconds(r.median_train_seconds), str(r.diverged), str(r.failed + r.interrupted))
                 if not is_published(r) else tuple(published_cells(r, headers)) for r in rows.itertuples()]
        heading = f"== {title}: {workload_caption(rows)}"
        if len(heading) > width:  # the caption on a line of its own rather than cut
            heading = f"== {title}:\n   {workload_caption(rows)}"
        out.extend(_truncate(line, width) for line in heading.splitlines())
        out.extend(fixed_width_table(headers, cells, "><<>><><><>>>", shrinkable=(1, 2), width=width))
        for r in rows.itertuples():
            note = "" if not pd.isna(r.rank) or is_published(r) else f"not ranked, {unranked_note(r)}; "
            out.append(_truncate(f"  #{format_rank(r.rank)} {r.config_id}: {note}{r.hparams}", width))
        out.append("")
    out.extend(textwrap.wrap(" ".join(footer(board, notes)), width))
    return "\n".join(out).rstrip("\n") + "\n"


def footer(board: pd.DataFrame, notes: Sequence[str] = ()) -> list[str]:
    """What the columns and intervals mean, a warning in words when seeds are few, and `notes`
    (the published results left out: scoring/published_board.py), each a sentence."""
    lines = ["Medians over seeds, one per seed: its latest attempt (older ones are superseded). A missed "
             "target counts as inf steps; inc: seeds whose latest attempt was interrupted or failed, counted "
             "as misses until re-run; seeds still running are not counted until they finish, and a row without "
             "a finished seed is listed after the ranked rows of its section, without a rank (-). 95% CI: "
             "success, Wilson score interval; medians, exact order-statistic interval (scipy quantile_test); "
             "* = [min, max], the widest interval fewer than 6 seeds allow, at its exact level (93.8% for 5 "
             "seeds, 87.5% for 4)."]
    measured = board[board["published"] == ""]
    few = measured[measured["seeds"] < FEW_SEEDS]
    if not few.empty:
        lines.append(f"{len(few)} of {len(measured)} rows have fewer than {FEW_SEEDS} seeds: their intervals "
                     "are wide, and ranks inside overlapping intervals are not a verdict.")
    if len(measured) < len(board):
        lines.append("Rows 'published (paper, table)': a paper's number as printed, in the best-valid column "
                     "(reference_results/published/), beside the rows measured here; never ranked.")
    lines.extend(f"{note}." for note in notes)
    return lines


# --- markdown ----------------------------------------------------------------------------------

_FULL_HEADERS = ("Rank", "Submission", "Config", "Hparams", "Seeds", "Reached", "Success", "95% CI success",
                 "Median steps", "95% CI steps", "Best valid", "95% CI best valid", "Final train",
                 "Final test", "Train s", "Time to target (s)", "Diverged", "Failed", "Interrupted",
                 "Running", "Superseded")
_FULL_RIGHT = frozenset(range(4, len(_FULL_HEADERS)))


def full_rows(rows: pd.DataFrame) -> list[list[str]]:
    """Formatted cells of every leaderboard column shown in Markdown and HTML (``_FULL_HEADERS``)."""
    return [[format_rank(r.rank), str(r.submission), str(r.config_id), str(r.hparams), str(r.seeds),
             str(r.reached), format_fraction(r.success),
             format_fraction_interval(r.success_ci_low, r.success_ci_high), format_steps(r.median_steps),
             format_interval(r.steps_ci_low, r.steps_ci_high, r.steps_ci_level),
             format_metric(r.median_best_valid, r.metric),
             format_metric_interval(r.best_valid_ci_low, r.best_valid_ci_high, r.best_valid_ci_level, r.metric),
             format_metric(r.median_final_train, r.metric),
             format_metric(r.median_final_test, r.metric), format_seconds(r.median_train_seconds),
             format_seconds(r.median_seconds_to_target), str(r.diverged), str(r.failed), str(r.interrupted),
             str(r.running), str(r.superseded)]
            if not is_published(r) else published_cells(r, _FULL_HEADERS) for r in rows.itertuples()]


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
                   right: frozenset[int] = frozenset()) -> str:
    """A GitHub-flavoured Markdown table; columns whose index is in ``right`` are right-aligned."""
    rule = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = [headers, rule, *rows]
    return "\n".join("| " + " | ".join(_md_cell(str(c)) for c in line) + " |" for line in lines) + "\n"


def markdown_report(board: pd.DataFrame, notes: Sequence[str] = ()) -> str:
    """The leaderboard as a Markdown document, one section per workload (`notes`: ``footer``)."""
    parts = ["# Leaderboard\n", " ".join(footer(board, notes)) + "\n"]
    for title, rows in sections(board):
        parts.append(f"## {title}\n")
        parts.append(f"{workload_caption(rows)}\n")
        parts.append(markdown_table(_FULL_HEADERS, full_rows(rows), _FULL_RIGHT))
        parts.extend(f"{_md_cell(line)}\n" for line in unranked_lines(rows))
    return "\n".join(parts)


# --- plots -------------------------------------------------------------------------------------


def learning_curve_png(rows: pd.DataFrame, curves: pd.DataFrame) -> bytes:
    """PNG bytes of one workload's learning curves.

    Left panel: validation metric vs step, one line per leaderboard row (median over seeds at each
    eval step) with a min–max band and the target as a dashed horizontal line. Right panel: the
    train loss, drawn the same way. ``rows`` are the workload's leaderboard rows, ``curves`` the
    output of ``aggregate.learning_curves`` (any workloads).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    first = rows.iloc[0]
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_valid, ax_loss = fig.subplots(1, 2)
    palette = matplotlib.colormaps["tab10"]
    for i, r in enumerate(rows.itertuples()):
        c = curves[(curves["workload"] == r.workload) & (curves["config_id"] == r.config_id)
                   & (curves["study_id"] == r.study_id)]
        if c.empty:
            continue
        color = palette(i % 10)
        label = f"{group_name(r.tuning_budget, short=True)} #{format_rank(r.rank)} {r.submission} [{r.config_id}]"
        ax_valid.plot(c["step"], c["valid_median"], color=color, label=label)
        ax_valid.fill_between(c["step"], c["valid_min"], c["valid_max"], color=color, alpha=0.2)
        ax_loss.plot(c["step"], c["train_loss_median"], color=color, label=label)
        ax_loss.fill_between(c["step"], c["train_loss_min"], c["train_loss_max"], color=color,
                             alpha=0.2)
    ax_valid.axhline(float(first["target"]), color="black", linestyle="--", linewidth=1,
                     label=f"target {format_metric(first['target'], first['metric'])}")
    if is_accuracy(first["metric"]):
        ax_valid.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax_valid.set(title=f"{first['workload']}: validation {first['metric']}", xlabel="step",
                 ylabel=f"validation {first['metric']}")
    ax_loss.set(title=f"{first['workload']}: train loss", xlabel="step", ylabel="train loss")
    for ax in (ax_valid, ax_loss):
        ax.grid(True, alpha=0.3)
    ax_valid.legend(fontsize="small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


# --- html --------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.hp { font-family: monospace; font-size: 0.85em; }
p.caption { color: #555; }
img { max-width: 100%; }
"""


Cell = str | tuple[str, str]  # text, or (text, href) for a link


def html_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]],
               right: frozenset[int] = frozenset(), mono: frozenset[int] = frozenset()) -> str:
    """An HTML table with escaped cells; ``right`` columns are numeric, ``mono`` monospace; a
    (text, href) cell is a link."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)

    def cell(i: int, value: Cell) -> str:
        cls = ' class="num"' if i in right else ' class="hp"' if i in mono else ""
        if isinstance(value, tuple):
            text, href = value
            return f'<td{cls}><a href="{html.escape(href)}">{html.escape(text)}</a></td>'
        return f"<td{cls}>{html.escape(value)}</td>"

    body = "\n".join("<tr>" + "".join(cell(i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _comparison_section(key: str, c: compare.Comparison) -> str:
    title = html.escape(f"{c.a} vs {c.b} ({c.workload}, paired seeds)")
    return (f'<h3 id="cmp-{html.escape(key)}">{title}</h3>\n<pre>{html.escape(compare.summary(c))}</pre>\n'
            + _img(compare.paired_png(c), f"paired seeds {c.a} vs {c.b}"))


def html_report(board: pd.DataFrame, pngs: dict[str, bytes],
                comparisons: dict[str, compare.Comparison] | None = None,
                scores: profile.Profile | None = None, notes: Sequence[str] = ()) -> str:
    """A self-contained HTML page: inline CSS, a table per workload and tuning budget (each row
    linked to its paired comparison with the row above), each workload's curves after its last
    table, the paired comparisons, and the performance profile across workloads."""
    comparisons = comparisons or {}
    parts = []
    titled = sections(board)
    for i, (title, rows) in enumerate(titled):
        workload = str(rows.iloc[0]["workload"])
        cells: list[list[Cell]] = []
        for record, text_cells in zip(rows.to_dict("records"), full_rows(rows)):
            key = compare.row_key(record)
            link: Cell = (f"vs #{record['rank'] - 1}", f"#cmp-{key}") if key in comparisons else "-"
            cells.append([*text_cells, link])
        section = [f"<h2>{html.escape(title)}</h2>",
                   f'<p class="caption">{html.escape(workload_caption(rows))}</p>',
                   html_table((*_FULL_HEADERS, "Paired"), cells, _FULL_RIGHT, frozenset({3})),
                   *(f'<p class="caption">{html.escape(line)}</p>' for line in unranked_lines(rows))]
        last_of_workload = i + 1 == len(titled) or str(titled[i + 1][1].iloc[0]["workload"]) != workload
        if workload in pngs and last_of_workload:
            section.append(_img(pngs[workload], f"learning curves of {workload}"))
        parts.append("\n".join(section))
    if comparisons:
        parts.append("<h2>Paired comparisons with the row above</h2>")
        parts.extend(_comparison_section(k, c) for k, c in comparisons.items())
    if scores is not None and not scores.scores.empty:  # empty: no row has a finished seed yet
        parts.append("<h2>Performance profiles across workloads (AlgoPerf benchmark score)</h2>\n"
                     f"<pre>{html.escape(profile.table(scores))}</pre>\n"
                     + _img(profile.profile_png(scores), "performance profiles"))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>Leaderboard</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<h1>Leaderboard</h1>\n"
            f"<p class=\"caption\">{html.escape(' '.join(footer(board, notes)))} Curves: median over seeds, band "
            "min&ndash;max.</p>\n" + "\n".join(parts) + "\n</body>\n</html>\n")


# --- files -------------------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_file(path: str, data: bytes) -> str:
    """Write `data` to `path` (its directory created if needed); UserError naming the fix if it
    cannot be written. Returns the path."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}; pass --out=WRITABLE/PREFIX") from e
    return path


def write_reports(board: pd.DataFrame, curves: pd.DataFrame, out: str,
                  comparisons: dict[str, compare.Comparison] | None = None,
                  scores: profile.Profile | None = None, notes: Sequence[str] = ()) -> list[str]:
    """Write ``<out>.md``, ``<out>.html`` (with the paired comparisons and the profile, if given)
    and ``<out>_<workload>.png`` per workload; `notes` end the footer (``footer``).

    Creates the parent directory of ``out`` if needed; returns the paths written. Raises UserError
    when a file cannot be written.
    """
    paths: list[str] = []
    pngs: dict[str, bytes] = {}
    for workload, rows in board.groupby("workload", sort=True):
        png = learning_curve_png(rows, curves)
        pngs[str(workload)] = png
        path = f"{out}_{_safe_name(str(workload))}.png"
        write_file(path, png)
        paths.append(path)
    md_path, html_path = f"{out}.md", f"{out}.html"
    write_file(md_path, markdown_report(board, notes).encode("utf-8"))
    write_file(html_path, html_report(board, pngs, comparisons, scores, notes).encode("utf-8"))
    return [md_path, html_path, *paths]
