"""CLI: ``python -m scoring leaderboard [--workload=NAME] [--results=PATH] [--out=PREFIX] [--rescore]`` and
``python -m scoring diagnostics --run=RUN_ID [--results=PATH] [--out=PNG]`` (grafting ratios).

User errors (missing database, unknown workload, unwritable output) are reported as one line
``error: ...`` on stderr with exit code 2.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence

from absl import app, flags
from absl import logging as absl_logging

from harness import spec, store
from scoring import aggregate, diagnostics, render
from workloads import targets

FLAGS = flags.FLAGS
COMMANDS = ("leaderboard", "diagnostics")
USAGE = ("python -m scoring leaderboard [--workload=NAME] [--results=PATH] [--out=PREFIX] [--rescore] | "
         "python -m scoring diagnostics --run=RUN_ID [--results=PATH] [--out=PNG]")


def define_flags() -> None:
    """Declare the command-line flags (called once, when run as a program)."""
    flags.DEFINE_string("workload", None, "Only this workload (default: every workload in the database).")
    flags.DEFINE_string("results", "results/results.db", "The results database written by the harness.")
    flags.DEFINE_string("out", None,
                        "leaderboard: output prefix (default results/leaderboard), writes PREFIX.md, "
                        "PREFIX.html and PREFIX_<workload>.png; diagnostics: the PNG (default "
                        "results/diagnostics_<run>.png).")
    flags.DEFINE_integer("run", None, "diagnostics: the run id whose recorded diagnostics to plot.")
    flags.DEFINE_bool("rescore", False,
                      "leaderboard: score every run against its workload's current target in "
                      "reference_results/targets.json (recomputed from the run's evals) instead of the "
                      "target recorded with the run.")


def run_leaderboard(results: str, workload: str | None, out: str, rescore: bool = False
                    ) -> tuple[str, list[str]]:
    """Score the database at ``results``: (terminal table, paths written). Reads only the database
    (and, with ``rescore``, the targets file)."""
    conn = store.open_readonly(results)
    try:
        runs = aggregate.load_runs(conn)
        evals = aggregate.load_evals(conn)
    except sqlite3.DatabaseError as e:
        raise spec.UserError(f"cannot read results database {results}: {e}; pass --results=PATH of a "
                             "database written by the harness") from e
    finally:
        conn.close()
    runs = aggregate.select_workload(runs, workload)
    evals = evals[evals["run_id"].isin(runs["run_id"])]
    if rescore:
        runs = aggregate.rescore(runs, evals, targets.current_targets())
    board = aggregate.leaderboard(runs)
    curves = aggregate.learning_curves(runs, evals)
    paths = render.write_reports(board, curves, out)
    return render.terminal_table(board), paths


def main(argv: Sequence[str]) -> int:
    """Dispatch the command; UserError -> one line on stderr and exit code 2."""
    absl_logging.set_verbosity(absl_logging.WARNING)  # keep the terminal for progress and results
    try:
        args = list(argv[1:])
        if len(args) != 1 or args[0] not in COMMANDS:
            raise spec.UserError(f"expected one command from {', '.join(COMMANDS)}, got "
                                 f"{' '.join(args) or 'none'}; usage: {USAGE}")
        if args[0] == "diagnostics":
            if FLAGS.run is None:
                raise spec.UserError(f"diagnostics needs --run=RUN_ID; usage: {USAGE}")
            out = FLAGS.out or f"results/diagnostics_{FLAGS.run}.png"
            print(f"wrote {diagnostics.write_png(FLAGS.results, FLAGS.run, out)}")
            return 0
        table, paths = run_leaderboard(FLAGS.results, FLAGS.workload, FLAGS.out or "results/leaderboard",
                                       FLAGS.rescore)
    except spec.UserError as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        return 2
    print(table, end="")
    print()
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
