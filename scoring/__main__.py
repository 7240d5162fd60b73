"""CLI of scoring (reads the results database; imports JAX only to check the workload names of the
papers' data files):

  python -m scoring leaderboard [--workload=NAME] [--results=PATH] [--out=PREFIX] [--rescore]
  python -m scoring diagnostics --run=RUN_ID [--results=PATH] [--out=PNG]
  python -m scoring discover-schedule --run=RUN_ID|--study=NAME --first_steps=N [--round] [--results=PATH]
      [--out=JSON]
  python -m scoring study --study=NAME [--results=PATH] [--out=PREFIX]
  python -m scoring compare --workload=W --a=ROW --b=ROW [--results=PATH] [--out=PNG]
  python -m scoring profile [--time=steps|seconds] [--results=PATH] [--out=PREFIX]
  python -m scoring tuned-config --study=NAME --out=JSON [--results=PATH]
  python -m scoring scaling --workload=NAME [--results=PATH] [--out=PNG]
  python -m scoring published [--paper=PAPER] [--workload=NAME]
  python -m scoring coverage [--out=reference_results/COVERAGE.md]
  python -m scoring verdict --spec=FILE.json [--results=PATH] [--out=PREFIX]

`published` and `coverage` read the papers' data files (reference_results/published/,
reference_results/coverage/), not the database; a leaderboard of a full-scale workload shows the
published results about it of the metric it measures, and counts the others in a footnote
(scoring/published_board.py).

User errors (missing database, unknown workload, unwritable output, a bad data file) are reported
as one line ``error: ...`` on stderr with exit code 2 (harness/cli.py).
"""

from __future__ import annotations

import pandas as pd
from absl import flags

from harness import cli
from harness.errors import UserError
from harness.store import ResultsReader
from scoring import (
    aggregate,
    compare,
    coverage,
    diagnostics,
    profile,
    published,
    published_board,
    render,
    scaling,
    schedule_discovery,
    study,
    tuned_config,
    verdict,
)
from workloads import targets

COMMANDS = ("leaderboard", "diagnostics", "discover-schedule", "study", "compare", "profile", "tuned-config",
            "scaling", "published", "coverage", "verdict")
USAGE = ("python -m scoring leaderboard [--workload=NAME] [--results=PATH] [--out=PREFIX] [--rescore] | "
         "python -m scoring diagnostics --run=RUN_ID [--results=PATH] [--out=PNG] | "
         "python -m scoring discover-schedule --run=RUN_ID|--study=NAME --first_steps=N [--round] [--out=JSON] | "
         "python -m scoring study --study=NAME [--results=PATH] [--out=PREFIX] | "
         "python -m scoring compare --workload=W --a=ROW --b=ROW [--out=PNG] | "
         "python -m scoring profile [--time=steps|seconds] [--out=PREFIX] | "
         "python -m scoring tuned-config --study=NAME --out=JSON | "
         "python -m scoring scaling --workload=W [--out=PNG] | "
         "python -m scoring published [--paper=PAPER] [--workload=NAME] | "
         "python -m scoring coverage [--out=reference_results/COVERAGE.md] | "
         "python -m scoring verdict --spec=FILE.json [--out=PREFIX]")


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("workload", None, "Only this workload (default: every workload in the database); "
                        "published: only the numbers about it.", flag_values=fv)
    flags.DEFINE_string("results", "results/results.db", "The results database written by the harness.",
                        flag_values=fv)
    flags.DEFINE_string("out", None,
                        "leaderboard: output prefix (default results/leaderboard), writes PREFIX.md, "
                        "PREFIX.html and PREFIX_<workload>.png; diagnostics: the PNG (default "
                        "results/diagnostics_<run>.png); discover-schedule: the JSON (default: print it); "
                        "study: the plots' prefix (default results/study_<name>); tuned-config: the "
                        "named config's .json path (required); scaling: the PNG (default "
                        "results/scaling_<workload>.png); coverage: the Markdown file (default "
                        "reference_results/COVERAGE.md of the repository); verdict: PREFIX.md and "
                        "PREFIX.png (default: print only).",
                        flag_values=fv)
    flags.DEFINE_integer("run", None, "diagnostics, discover-schedule: the run id of a recorded run.",
                         flag_values=fv)
    flags.DEFINE_string("study", None, "study, tuned-config, discover-schedule: the name of a tuning study "
                        "(python -m harness tune).",
                        flag_values=fv)
    flags.DEFINE_string("a", None, "compare: a row (config id, submission, or submission:config).",
                        flag_values=fv)
    flags.DEFINE_string("b", None, "compare: the other row.", flag_values=fv)
    flags.DEFINE_enum("time", "steps", ["steps", "seconds"], "profile: time to target in steps or in "
                      "training seconds.", flag_values=fv)
    flags.DEFINE_bool("rescore", False,
                      "leaderboard: score every run against its workload's current target in "
                      "reference_results/targets.json (recomputed from the run's evals) instead of the "
                      "target recorded with the run.", flag_values=fv)
    flags.DEFINE_string("spec", None, "verdict: the comparisons, a JSON file (scoring/verdict.py; "
                        "docs/studies/verdict.json).", flag_values=fv)
    flags.DEFINE_string("paper", None, f"published: only this paper ({', '.join(published.PAPERS)}).",
                        flag_values=fv)
    define_discovery_flags(fv)


def define_discovery_flags(fv: flags.FlagValues) -> None:
    """The flags of discover-schedule besides --run, --results and --out (also `python -m harness`)."""
    flags.DEFINE_integer("first_steps", None, "discover-schedule: median over the ratios of steps <= N.",
                         flag_values=fv)
    flags.DEFINE_bool("round", False, "discover-schedule: round each multiplier down to a power of 10.",
                      flag_values=fv)


def load_board(results: str, workload: str | None = None, rescore: bool = False
               ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(leaderboard, runs, evals) of the database at `results` (one workload or all). Reads only the
    database (and, with ``rescore``, the targets file)."""
    with ResultsReader(results) as reader:
        runs = aggregate.select_workload(reader.runs(), workload)
        evals = reader.evals()
        studies = reader.studies()
    evals = evals[evals["run_id"].isin(runs["run_id"])]
    if rescore:
        runs = aggregate.rescore(runs, evals, targets.current_targets())
    return aggregate.leaderboard(runs, studies), runs, evals


def run_leaderboard(results: str, workload: str | None, out: str, rescore: bool = False
                    ) -> tuple[str, list[str]]:
    """Score the database at ``results``: (terminal table, paths written); the HTML page holds the
    paired comparisons of adjacent rows and the performance profile."""
    board, runs, evals = load_board(results, workload, rescore)
    curves = aggregate.learning_curves(runs, evals)
    shown, notes = published_board.with_published(board)  # the profile and comparisons: measured rows only
    paths = render.write_reports(shown, curves, out, compare.with_rows_above(runs, board), profile.build(board),
                                 notes)
    return render.terminal_table(shown, notes=notes), paths


def run_discover_schedule(fv: flags.FlagValues) -> str:
    """discover-schedule with the parsed flags: the JSON, or a line naming the file written."""
    if (fv.run is None) == (fv.study is None) or fv.first_steps is None:
        raise UserError("discover-schedule needs --first_steps=N and one of --run=RUN_ID or --study=NAME "
                        "(a grafted study: its selected trial's run)")
    run = fv.run if fv.run is not None else schedule_discovery.selected_run(fv.results, fv.study)
    text = schedule_discovery.discover_to_file(fv.results, run, fv.first_steps, fv.round, fv.out)
    return f"wrote {fv.out}\n" if fv.out else text


def main(argv: list[str], fv: flags.FlagValues) -> int:
    """Dispatch the command."""
    args = list(argv[1:])
    if len(args) != 1 or args[0] not in COMMANDS:
        raise UserError(f"expected one command from {', '.join(COMMANDS)}, got "
                        f"{' '.join(args) or 'none'}; usage: {USAGE}")
    if args[0] == "diagnostics":
        if fv.run is None:
            raise UserError(f"diagnostics needs --run=RUN_ID; usage: {USAGE}")
        out = fv.out or f"results/diagnostics_{fv.run}.png"
        print(f"wrote {diagnostics.write_png(fv.results, fv.run, out)}")
        return 0
    if args[0] == "discover-schedule":
        print(run_discover_schedule(fv), end="")
        return 0
    if args[0] == "compare":
        if not (fv.workload and fv.a and fv.b):
            raise UserError(f"compare needs --workload, --a and --b; usage: {USAGE}")
        board, runs, _ = load_board(fv.results, fv.workload)
        result = compare.compare(runs, board, fv.workload, fv.a, fv.b)
        print(compare.summary(result), end="")
        print(f"wrote {render.write_file(fv.out or 'results/compare.png', compare.paired_png(result))}")
        return 0
    if args[0] == "profile":
        board, _, _ = load_board(fv.results)
        scores = profile.build(board, fv.time)
        if scores.scores.empty:
            raise UserError("no leaderboard row has a finished seed yet (runs still running, interrupted or "
                            "failed): nothing to profile until one completes")
        print(profile.table(scores), end="")
        print(f"wrote {render.write_file((fv.out or 'results/profile') + '.png', profile.profile_png(scores))}")
        return 0
    if args[0] == "tuned-config":
        if not (fv.study and fv.out):
            raise UserError(f"tuned-config needs --study=NAME and --out=JSON; usage: {USAGE}")
        print(f"wrote {tuned_config.write(fv.results, fv.study, fv.out)}")
        return 0
    if args[0] == "scaling":
        if not fv.workload:
            raise UserError(f"scaling needs --workload=NAME; usage: {USAGE}")
        points = scaling.load(fv.results, fv.workload)
        print(scaling.table(points), end="")
        out = fv.out or f"results/scaling_{fv.workload}.png"
        print(f"wrote {render.write_file(out, scaling.png(points))}")
        return 0
    if args[0] == "published":
        print(published.table(published.select(published.load(), fv.paper, fv.workload)), end="")
        return 0
    if args[0] == "coverage":
        print(f"wrote {coverage.write(fv.out or coverage.COVERAGE_MD)}")
        return 0
    if args[0] == "verdict":
        if not fv.spec:
            raise UserError(f"verdict needs --spec=FILE.json; usage: {USAGE}")
        spec = verdict.load_spec(fv.spec)
        reports = verdict.load_reports(fv.results, spec)
        page = verdict.markdown(spec, reports, published.load())
        print(page, end="")
        if fv.out:
            print(f"wrote {render.write_file(fv.out + '.md', page.encode())}")
            print(f"wrote {render.write_file(fv.out + '.png', verdict.png(spec, reports))}")
        return 0
    if args[0] == "study":
        if not fv.study:
            raise UserError(f"study needs --study=NAME; usage: {USAGE}")
        report = study.load(fv.results, fv.study)
        print(study.summary(report), end="")
        for path in study.write_plots(report, fv.out or study.default_prefix(fv.study)):
            print(f"wrote {path}")
        return 0
    table, paths = run_leaderboard(fv.results, fv.workload, fv.out or "results/leaderboard", fv.rescore)
    print(table, end="")
    print()
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    cli.run(define_flags, main)
