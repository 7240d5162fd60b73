"""Speed of tuning studies (a script, not a test): how much of a study is compilation, and what a
trial costs beside one seed of `harness run`.

  python -m harness.bench_study [--workload=fashion_mnist_resnet] [--submission=nesterov]
                                [--trials=16] [--rounds=4]

1. A study of --trials feasible trials over the submission's search space (no confirmation), with
   the study's own accounting (studies.compile_seconds / studies.wall_seconds). Goal: compile at
   most 5% of the wall time. Without shared compilation every trial would compile its own step.
2. Wall time per trial vs one seed of `harness run` with the same hparams, side by side in
   alternating rounds (ABBA; this machine's speed drifts by up to 30% over minutes): a trial is
   what the study does for it (RunPlan.with_hparams with its checks, the run, the trial's row); a
   seed of `harness run` is Sweep.run_seed of a plan built beforehand. Goal: within 1.1x.
"""

from __future__ import annotations

import os
import tempfile
import time

from absl import flags

from harness import cli


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("workload", "fashion_mnist_resnet", "Workload.", flag_values=fv)
    flags.DEFINE_string("submission", "nesterov", "Submission (its search_space.json is searched).",
                        flag_values=fv)
    flags.DEFINE_integer("trials", 16, "Feasible trials of the study.", flag_values=fv)
    flags.DEFINE_integer("rounds", 4, "Alternating rounds of trial vs harness-run seed.", flag_values=fv)


def main(argv: list[str], fv: flags.FlagValues) -> int:
    del argv
    from harness import store, study_store
    from harness.recording import StudyLink
    from harness.runner import RunOptions
    from harness.study import StudyRunner, StudySpec, trial_seed
    from harness.timing import alternate, median_and_quartiles

    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(results=os.path.join(tmp, "bench.db"), progress=False)
        spec = StudySpec(workload=fv.workload, submission=fv.submission, trials=fv.trials, confirm_seeds=0,
                         study="bench")
        runner = StudyRunner(spec, options, "python -m harness.bench_study")
        (outcome,) = runner.run()
        with store.ResultsReader(options.results) as results:
            study = results.study("bench")
        compile_share = study["compile_seconds"] / study["wall_seconds"]
        print(f"study of {fv.trials} feasible trials ({len(outcome.trials)} run): compile "
              f"{study['compile_seconds']:.1f} s of {study['wall_seconds']:.1f} s wall = "
              f"{100 * compile_share:.1f}% (goal <= 5%)", flush=True)

        sweep, base = runner.sweep, runner.base
        assert sweep is not None
        conn = store.connect(options.results)
        recorder = study_store.StudyRecorder(conn, "bench", runner.settings(0))
        points = [t.point for t in outcome.trials]

        def as_trial(r: list[int] = [0]) -> float:  # noqa: B006 - the round counter
            point, index = points[r[0] % len(points)], 1000 + r[0]
            r[0] += 1
            start = time.perf_counter()
            trial_plan, seed = base.with_hparams(point), trial_seed(0, index)
            summary = sweep.run_seed(conn, seed, trial_plan, StudyLink(recorder.study_id, "trial"))
            recorder.record_trial(index, point, seed, summary.run_id, summary.status == "completed")
            return time.perf_counter() - start

        run_plans = [base.with_hparams(p) for p in points]  # `harness run` builds its plan before its seeds

        def as_run_seed(r: list[int] = [0]) -> float:  # noqa: B006
            run_plan, seed = run_plans[r[0] % len(run_plans)], 2000 + r[0]
            r[0] += 1
            start = time.perf_counter()
            sweep.run_seed(conn, seed, run_plan)
            return time.perf_counter() - start

        def report(r: int, t: dict[str, list[float]]) -> None:
            print(f"  round {r}: trial {t['trial'][-1]:.1f} s, harness-run seed {t['run seed'][-1]:.1f} s",
                  flush=True)

        times = alternate({"trial": as_trial, "run seed": as_run_seed}, fv.rounds, report)
        conn.close()
    ratios = [a / b for a, b in zip(times["trial"], times["run seed"])]
    print(f"wall time per trial / per harness-run seed, median of per-round ratios: "
          f"{median_and_quartiles(ratios)} (goal <= 1.1)")
    return 0


if __name__ == "__main__":
    cli.run(define_flags, main)
