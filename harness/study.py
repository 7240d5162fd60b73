"""Tuning studies: equal budgets of quasi-random trials, then the selected point on many seeds.

The protocol of Nado et al. 2021 (Sec. 2 and 4, App. C.3) and of AlgoPerf's external tuning:

1. Trials. Trial i trains point i of the search space's quasi-random sequence
   (harness/search_space.py), set on top of the fixed hyperparameters (--hparams, --config), with one
   seed for the full budget. Its seed is derived from (study seed, i) and lies in [2^30, 2^31): it
   is never one of the confirmation seeds 0 .. K-1. A trial that diverges is infeasible and does not
   count; trials run until N are feasible or M (default 3N) were run ("our trial budgets refer to
   the number of feasible trials", Nado et al. App. C.3).
2. Selection among the feasible trials: ``best_valid``, the best validation metric reached within
   the budget (Nado et al.), or ``steps_to_target``, the fewest steps to the target (a miss counts
   as inf), the best validation metric breaking ties (AlgoPerf).
3. Confirmation: the selected hyperparameters on seeds 0 .. K-1 (K = 50 in the papers). The study
   reports the median best validation metric over them, how many reached the target, and whether
   that median meets the target (Nado et al.'s "matched").

With --studies=S, S independent studies (study seeds K, K+1, ...; AlgoPerf scores the median over
studies).

Everything is recorded as it happens (study_store.StudyRecorder): the same command continues a killed
study. Recorded trials and confirmation seeds are not run again; a run that was cut short is run
again from its start (the cut one stays in the database, marked interrupted). One process at a time
runs a study (a lock file beside the database).

Trials share one compilation: the numeric hyperparameters are traced arguments of the compiled step
(harness/spec.py); trials whose static hyperparameters differ (a schedule's name, a boolean) form
other compile classes, each compiled once per process.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from harness import plan, search_space, store, study_store
from harness.cli import SEED_LIMIT
from harness.direction import Direction
from harness.errors import UserError
from harness.formatting import compact_pairs, format_metric
from harness.recording import StudyLink
from harness.runner import RunOptions, RunSummary, RunTask, Sweep, summary_line
from workloads import targets

if TYPE_CHECKING:
    from harness.ray_cluster import RaySettings

SELECT_RULES = ("best_valid", "steps_to_target")
#: Trial seeds lie in [TRIAL_SEED_BASE, 2 * TRIAL_SEED_BASE); confirmation seeds below it.
TRIAL_SEED_BASE = 2 ** 30


def trial_seed(study_seed: int, trial: int) -> int:
    """The seed of `trial`: a function of (study seed, trial index) only (numpy's SeedSequence),
    in [2^30, 2^31), so never a confirmation seed and always a valid 32-bit JAX key."""
    drawn = int(np.random.SeedSequence([study_seed, trial]).generate_state(1)[0])
    return TRIAL_SEED_BASE + drawn % TRIAL_SEED_BASE


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """What `python -m harness tune` was asked for."""

    workload: str | None
    submission: str
    trials: int  # feasible trials wanted (N)
    max_trials: int | None = None  # trials in all, at most (M; default 3N)
    search_space: str | None = None  # a JSON file; None: the submission's search_space.json
    hparams: Any = dataclasses.field(default_factory=dict)  # fixed under the search
    config: str | None = None
    knobs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    budget: int | None = None
    batch_size: int | None = None  # the workload's batch-size variant (harness/batch_scaling.py)
    study: str | None = None  # the name; default from the settings
    study_seed: int = 0
    confirm_seeds: int = 50
    select: str = "best_valid"
    studies: int = 1

    def check(self) -> None:
        for name, value, low in (("--trials", self.trials, 1), ("--confirm_seeds", self.confirm_seeds, 0),
                                 ("--studies", self.studies, 1), ("--study_seed", self.study_seed, 0)):
            if value < low:
                raise UserError(f"{name} must be >= {low}, got {value}")
        if self.max_trials is not None and self.max_trials < self.trials:
            raise UserError(f"--max_trials={self.max_trials} is fewer than --trials={self.trials}")
        if self.select not in SELECT_RULES:
            raise UserError(f"--select={self.select}: use {' or '.join(SELECT_RULES)}")
        if self.confirm_seeds > TRIAL_SEED_BASE:
            raise UserError(f"--confirm_seeds must be at most {TRIAL_SEED_BASE}")
        last = self.study_seed + self.studies - 1  # studies use study seeds study_seed, study_seed + 1, ...
        if last >= SEED_LIMIT:
            raise UserError(f"--study_seed={self.study_seed} with --studies={self.studies} uses study seeds up to "
                            f"{last}; study seeds are ints in [0, {SEED_LIMIT - 1}] like run seeds")

    @property
    def max_trials_or_default(self) -> int:
        return self.max_trials if self.max_trials is not None else 3 * self.trials


@dataclasses.dataclass(frozen=True)
class Trial:
    index: int
    point: Mapping[str, Any]
    seed: int
    run_id: int
    feasible: bool
    best_valid: float | None
    steps_to_target: int | None


@dataclasses.dataclass(frozen=True)
class Confirmation:
    """The selected point on the confirmation seeds."""

    seeds: int  # runs finished
    best_valid: list[float]  # per seed (a diverged seed counts with what it reached)
    reached: int
    median_best_valid: float | None
    matched: bool  # the median meets the target (Nado et al.)


@dataclasses.dataclass(frozen=True)
class StudyOutcome:
    name: str
    study_id: int
    trials: list[Trial]
    selected: Trial | None
    confirmation: Confirmation | None

    @property
    def feasible(self) -> int:
        return sum(t.feasible for t in self.trials)


def select(trials: list[Trial], rule: str, direction: Direction) -> Trial | None:
    """The best feasible trial by `rule` (module docstring); ties left to the lower trial index."""
    feasible = [t for t in trials if t.feasible and t.best_valid is not None]
    if not feasible:
        return None
    sign = 1.0 if direction is Direction.MAXIMIZE else -1.0

    def key(t: Trial) -> tuple[float, ...]:
        valid = -sign * float(t.best_valid)  # type: ignore[arg-type]
        if rule == "steps_to_target":
            steps = math.inf if t.steps_to_target is None else float(t.steps_to_target)
            return (steps, valid, t.index)
        return (valid, t.index)

    return min(feasible, key=key)


def confirmation(summaries: list[RunSummary], direction: Direction, target: float) -> Confirmation:
    values = [s.best_valid for s in summaries if s.best_valid is not None]
    median = statistics.median(values) if values else None
    return Confirmation(len(summaries), values, sum(s.steps_to_target is not None for s in summaries),
                        median, median is not None and direction.reached(median, target))


def default_name(spec: StudySpec, base: plan.RunPlan, space: search_space.SearchSpace) -> str:
    """``submission@workload/<space hash>/seed<k>``; a batch-size variant's workload as
    ``workload@batch=B`` (workloads/targets.variant_key)."""
    workload = (base.workload.name if base.batch_size is None
                else targets.variant_key(base.workload.name, base.batch_size))
    return f"{base.submission.name}@{workload}/{space.hash}/seed{spec.study_seed}"


@contextlib.contextmanager
def exclusive(results: str, name: str) -> Iterator[None]:
    """Hold the study's lock file (`<results>.<study>.lock`) for the block; UserError if another
    process holds it (two processes would run the same trials)."""
    path = f"{results}.{re.sub(r'[^A-Za-z0-9_.@-]+', '_', name)}.lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"study {name} is being run by another process (lock {path}); wait for it "
                            "or stop it, then run the same command again") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class StudyClock:
    """Adds this process's compile and wall seconds to the study's totals after every run, so that
    a killed process loses at most the run in flight. Loading the data and the first compilation
    happen inside the first study that runs something (StudyRunner._run_tasks), so they count in it."""

    def __init__(self, recorder: study_store.StudyRecorder, compile_seconds: Callable[[], float]) -> None:
        self.recorder, self.compile_seconds = recorder, compile_seconds
        self.compile_mark = compile_seconds()
        self.wall_mark = time.perf_counter()

    def record(self) -> None:
        compiled, now = self.compile_seconds(), time.perf_counter()
        self.recorder.add_seconds(compiled - self.compile_mark, now - self.wall_mark)
        self.compile_mark, self.wall_mark = compiled, now


class StudyRunner:
    """Runs the studies of one spec in this process: one Sweep (data loaded, steps compiled once
    per compile class) for every trial and confirmation run."""

    def __init__(self, spec: StudySpec, options: RunOptions, command: str) -> None:
        spec.check()
        self.spec, self.options, self.command = spec, options, command
        self.base = plan.build(spec.workload, spec.submission, config=spec.config, hparams=spec.hparams,
                               knobs=spec.knobs, budget=spec.budget, batch_size=spec.batch_size)
        self.space = search_space.load(spec.search_space, self.base.submission)
        fixed = set(spec.hparams) if isinstance(spec.hparams, Mapping) else {k for h in spec.hparams for k in h}
        both = sorted(fixed & set(self.space.names))
        if both:
            raise UserError(f"hparams {', '.join(both)} are both fixed (--hparams) and searched; drop them "
                            "from one of the two")
        # Every point the studies may draw is a valid value (a malformed space fails before anything runs).
        for s in range(spec.studies):
            for i in range(spec.max_trials_or_default):
                point = self.space.point(spec.study_seed + s, i)
                try:
                    self.base.with_hparams(point, check_program=False)
                except UserError as e:
                    raise UserError(f"search space point {i} ({compact_pairs(point)}): {e}") from None
        self.sweep: Sweep | None = None
        self._started = False
        self._clock: StudyClock

    def name(self, s: int) -> str:
        base = self.spec.study or default_name(self.spec, self.base, self.space)
        return base if self.spec.studies == 1 else f"{base}/{s}"

    def settings(self, s: int) -> dict[str, Any]:
        """What defines study s: a resumed study must have the same (a batch-size variant's batch
        too; studies at the workload's own batch have the settings they had before --batch_size)."""
        spec = self.spec
        settings = {"workload": self.base.workload.name, "submission": self.base.submission.name,
                    "hparams": spec.hparams, "config": spec.config, "knobs": dict(spec.knobs),
                    "budget": self.base.budget, "search_space": self.space.raw, "study_seed": spec.study_seed + s,
                    "trials": spec.trials, "max_trials": spec.max_trials_or_default,
                    "confirm_seeds": spec.confirm_seeds, "select": spec.select}
        if self.base.batch_size is not None:
            settings["batch_size"] = self.base.batch_size
        return settings

    def run(self) -> list[StudyOutcome]:
        conn = store.connect(self.options.results)
        try:
            return [self._run_one(conn, s) for s in range(self.spec.studies)]
        finally:
            conn.close()

    def _run_one(self, conn: Any, s: int) -> StudyOutcome:
        name, spec = self.name(s), self.spec
        with exclusive(self.options.results, name):
            recorder = study_store.StudyRecorder(
                conn, name, self.settings(s), workload=self.base.workload.name,
                submission=self.base.submission.name, search_space=self.space.canonical,
                search_space_hash=self.space.hash, study_seed=spec.study_seed + s, trials=spec.trials,
                max_trials=spec.max_trials_or_default, confirm_seeds=spec.confirm_seeds,
                select_rule=spec.select, command=self.command)
            recorder.check_code(self.base.source_hash)
            finished = recorder.finished()
            self._clock = StudyClock(recorder, self._compile_seconds)
            interrupted = recorder.interrupt_unfinished_runs()
            print(f"study {name} [{recorder.study_id}]: {spec.trials} feasible trials (at most "
                  f"{spec.max_trials_or_default}) over {', '.join(self.space.names)} (search space "
                  f"{self.space.hash}), select by {spec.select}, then {spec.confirm_seeds} seeds"
                  + (f"; {interrupted} interrupted run(s) will run again" if interrupted else ""), flush=True)
            try:
                trials = self._trials(conn, recorder, spec.study_seed + s, name)
                chosen = select(trials, spec.select, self.base.workload.direction)
                result = self._confirm(conn, recorder, trials, chosen)
            finally:
                if not finished:  # a finished study only prints its report again: no time to count
                    self._clock.record()
        outcome = StudyOutcome(name, recorder.study_id, trials, chosen, result)
        print(report(outcome, self.base, spec), flush=True)
        return outcome

    def _start(self) -> None:
        """Load the data and compile the first class (here: this process's Sweep)."""
        self.sweep = Sweep(self.base, self.options)

    def _run_tasks(self, conn: Any, next_task: Callable[[], RunTask | None],
                   done: Callable[[RunTask, RunSummary], None], queued: Callable[[], int]) -> None:
        """`_execute` the tasks, after `_start` if this process has not started yet and there is a
        task: a finished study, or a resumed one with nothing left to run, loads and compiles nothing."""
        first = next_task()
        if first is None:
            return
        if not self._started:
            self._start()
            self._started = True
        pending = [first]
        self._execute(conn, lambda: pending.pop() if pending else next_task(), done, queued)

    def _compile_seconds(self) -> float:
        return self.sweep.compile_seconds if self.sweep is not None else 0.0

    def _execute(self, conn: Any, next_task: Callable[[], RunTask | None],
                 done: Callable[[RunTask, RunSummary], None], queued: Callable[[], int]) -> None:
        """Run the tasks `next_task()` gives (None: nothing more to start now), calling `done` with
        each run's summary: here one after another in this process's Sweep. `queued`: how many may
        still come (for progress; harness/ray_study.py runs the tasks on Ray workers instead)."""
        assert self.sweep is not None
        while (task := next_task()) is not None:
            done(task, self.sweep.run_seed(conn, task.seed, task.plan, task.study))

    def _trials(self, conn: Any, recorder: study_store.StudyRecorder, study_seed: int, name: str) -> list[Trial]:
        """Run trials until N are feasible or M were run; recorded ones are read, not run.

        Trial i starts only while the feasible trials plus those running are fewer than N: then
        fewer than N trials before it can turn out feasible, and one trial at a time would run it
        too. So the trials run are the same whether one runs at a time (here) or several do
        (harness/ray_study.py), whatever order they finish in."""
        spec, done = self.spec, recorder.finished_trials()
        # A trial whose run finished but whose row was not written yet (killed in between) is adopted.
        finished_runs = recorder.finished_runs("trial")
        trials: dict[int, Trial] = {}
        running: dict[int, int] = {}  # run seed -> trial index
        upcoming = iter(range(spec.max_trials_or_default))
        bar = tqdm(total=spec.trials, desc=f"study {name}", unit="feasible trial", position=0,
                   disable=not self.options.progress, file=sys.stderr, dynamic_ncols=True)

        def feasible() -> int:
            return sum(t.feasible for t in trials.values())

        def show(trial: Trial) -> None:
            trials[trial.index] = trial
            bar.update(int(trial.feasible))
            best = select(list(trials.values()), spec.select, self.base.workload.direction)
            bar.set_postfix_str(f"best {self._fmt(best.best_valid if best else None)}")
            tqdm.write(f"study {name}: {self._trial_line(trial, trials, best)}", file=sys.stdout)

        def next_task() -> RunTask | None:
            while feasible() + len(running) < spec.trials:
                i = next(upcoming, None)
                if i is None:
                    return None
                point, seed = self.space.point(study_seed, i), trial_seed(study_seed, i)
                if i not in done and seed in finished_runs:
                    run = results.run(finished_runs[seed])
                    recorder.record_trial(i, point, seed, finished_runs[seed], run["status"] == "completed")
                    done[i] = (finished_runs[seed], run["status"] == "completed")
                if i in done:
                    run = results.run(done[i][0])
                    show(Trial(i, point, seed, done[i][0], done[i][1], _value(run["best_valid"]),
                               _steps(run["steps_to_target"])))
                    continue
                running[seed] = i
                return RunTask(self.base.with_hparams(point), seed, StudyLink(recorder.study_id, "trial"), point)
            return None

        def finished(task: RunTask, summary: RunSummary) -> None:
            i = running.pop(task.seed)
            assert task.point is not None
            trial = Trial(i, task.point, task.seed, summary.run_id, summary.status == "completed",
                          summary.best_valid, summary.steps_to_target)
            recorder.record_trial(i, task.point, task.seed, summary.run_id, trial.feasible)
            self._clock.record()
            show(trial)

        def queued() -> int:
            return max(0, spec.trials - feasible() - len(running))

        with bar, store.ResultsReader(self.options.results) as results:
            self._run_tasks(conn, next_task, finished, queued)
        return [trials[i] for i in sorted(trials)]

    def _fmt(self, value: float | None) -> str:
        return format_metric(value, self.base.workload.metric)

    def _trial_line(self, trial: Trial, trials: Mapping[int, Trial], best: Trial | None) -> str:
        """The study's progress after `trial`: its result, the feasible count, the best so far."""
        spec = self.spec
        return (f"trial {trial.index + 1} of at most {spec.max_trials_or_default}: "
                f"{'feasible' if trial.feasible else 'infeasible (diverged)'}, best valid "
                f"{self._fmt(trial.best_valid)} [{compact_pairs(trial.point)}]; feasible "
                f"{sum(t.feasible for t in trials.values())}/{spec.trials}; best so far: trial "
                f"{best.index + 1 if best else '-'} {self._fmt(best.best_valid if best else None)}")

    def _confirm(self, conn: Any, recorder: study_store.StudyRecorder, trials: list[Trial], chosen: Trial | None
                 ) -> Confirmation | None:
        spec, wl = self.spec, self.base.workload
        if chosen is None:
            recorder.update(status="exhausted", finished_at=time.time())
            return None
        recorder.update(status="confirming", selected_trial=chosen.index)
        chosen_plan = self.base.with_hparams(chosen.point)
        done = recorder.finished_runs("confirmation")
        summaries: dict[int, RunSummary] = {}
        with store.ResultsReader(self.options.results) as results:
            for seed in range(spec.confirm_seeds):
                if seed in done:
                    run = results.run(done[seed])
                    summaries[seed] = RunSummary(done[seed], seed, run["status"], int(run["steps_done"]),
                                                 _steps(run["steps_to_target"]), _value(run["seconds_to_target"]),
                                                 _value(run["best_valid"]), _value(run["final_train"]),
                                                 float(run["train_seconds"] or 0.0), 0.0)
        link = StudyLink(recorder.study_id, "confirmation")
        to_run = collections.deque(seed for seed in range(spec.confirm_seeds) if seed not in done)

        def next_task() -> RunTask | None:
            return RunTask(chosen_plan, to_run.popleft(), link, chosen.point) if to_run else None

        def finished(task: RunTask, summary: RunSummary) -> None:
            self._clock.record()
            summaries[task.seed] = summary
            tqdm.write(f"study {recorder.name}: confirmation {summary_line(summary, chosen_plan)}",
                       file=sys.stdout)

        self._run_tasks(conn, next_task, finished, lambda: len(to_run))
        recorder.update(status="done", finished_at=time.time())
        return confirmation([summaries[seed] for seed in sorted(summaries)], wl.direction, wl.target)


def _value(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _steps(x: Any) -> int | None:
    value = _value(x)
    return None if value is None else int(value)


def report(outcome: StudyOutcome, base: plan.RunPlan, spec: StudySpec) -> str:
    """The study's result in a few lines."""
    wl = base.workload
    fmt = lambda v: format_metric(v, wl.metric)  # noqa: E731
    lines = [f"study {outcome.name}: {outcome.feasible} feasible of {len(outcome.trials)} trials"]
    if outcome.selected is None:
        lines.append("  no feasible trial: nothing to confirm (widen or move the search space)")
        return "\n".join(lines)
    t = outcome.selected
    lines.append(f"  selected by {spec.select}: trial {t.index + 1} [{compact_pairs(t.point)}], best valid "
                 f"{fmt(t.best_valid)}, steps to target {t.steps_to_target or 'inf'}")
    c = outcome.confirmation
    if c is not None and c.seeds:
        lines.append(f"  confirmation on {c.seeds} seeds: median best valid {fmt(c.median_best_valid)}, "
                     f"target {fmt(wl.target)} reached by {c.reached}/{c.seeds}; median "
                     f"{'meets' if c.matched else 'misses'} the target")
    return "\n".join(lines)


def score(outcomes: list[StudyOutcome]) -> float | None:
    """AlgoPerf's external-tuning score: the median over studies of the confirmation median."""
    medians = [o.confirmation.median_best_valid for o in outcomes
               if o.confirmation is not None and o.confirmation.median_best_valid is not None]
    return statistics.median(medians) if medians else None


def run_studies(spec: StudySpec, options: RunOptions, command: str, ray: RaySettings | None = None
                ) -> list[StudyOutcome]:
    """Validate everything, then run (or continue) the studies of `spec`: in this process, or on
    the Ray cluster of `ray` (harness/ray_study.py)."""
    if os.path.isdir(options.results):
        raise UserError(f"results path {options.results} is a directory; pass a file such as "
                        f"{options.results}/results.db")
    if ray is None:
        runner = StudyRunner(spec, options, command)
    else:
        from harness.ray_study import RayStudyRunner  # imports Ray

        runner = RayStudyRunner(spec, options, command, ray)
    outcomes = runner.run()
    if len(outcomes) > 1:
        value = score(outcomes)
        print(f"{len(outcomes)} studies: median over studies of the confirmation median best valid "
              f"{format_metric(value, runner.base.workload.metric)}", flush=True)
    return outcomes
