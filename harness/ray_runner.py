"""Seeds and trials as Ray work: a pool of worker actors, each holding a Sweep, and the driver that
hands them runs and alone writes the results database.

Compile once per worker: a worker (`SweepWorker`, one Ray actor in its own process) rebuilds the
plan from its arguments (`PlanSpec`), loads the data and compiles the plan's compile class once,
then runs many seeds and trials; a trial of other static hparams compiles its class there once too
(harness/runner.py, Sweep.compiled), and the driver sends a run to an idle worker that has its class
compiled when there is one. The first worker starts alone: the others load its compiled steps from
JAX's persistent compilation cache (harness/ray_cluster.py) instead of compiling them again.

One writer: a worker records its run in a scratch SQLite database of its own, through the same
code as `harness run` (harness/recording.py), and sends the run back as data (store.export_run);
the driver writes it into the results database in one transaction (store.import_run), under a new
run id. A run that has not come back is not in the results: the same command runs it again.

Faults, by Ray's own retries: a worker process killed mid-run (or its node lost) is restarted by
Ray and the run retried from its start (max_restarts, max_task_retries: RETRIES times); the run is
recorded once, the retry's. A run whose submission raises ends as `failed` inside the Sweep and
comes back as such: recorded once, never retried. Bad input found on a worker (a UserError) ends
the command as one line, as it would without Ray.

Not with Ray: checkpoints (a retried run starts again), TensorBoard logs and --distributed runs.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

import ray
from tqdm import tqdm

from harness import audit, interrupts, plan, process_identity, ray_cluster, store, submission_loader
from harness.errors import SeedsFailed, UserError
from harness.plan import RunPlan
from harness.ray_cluster import RaySettings
from harness.recording import StudyLink
from harness.runner import RunOptions, RunSummary, RunTask, Sweep, skipped, summary_line

#: Times Ray restarts a dead worker and retries the run it had (a kill, a lost node).
RETRIES = 3


def portable_submission(submission: str) -> str:
    """--submission as a worker in another directory reads it: paths made absolute (each side of
    M#D), built-in names as they are."""
    parts = submission.split(submission_loader.GRAFT_SEP)
    return submission_loader.GRAFT_SEP.join(os.path.abspath(p) if submission_loader.is_path(p) else p
                                            for p in parts)


@dataclasses.dataclass(frozen=True)
class PlanSpec:
    """What rebuilds a plan on a worker: plan.build's arguments, as the command gave them."""

    workload: str | None
    submission: str
    config: str | None = None
    hparams: Any = dataclasses.field(default_factory=dict)
    knobs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    budget: int | None = None
    batch_size: int | None = None

    def build(self) -> RunPlan:
        return plan.build(self.workload, self.submission, config=self.config, hparams=self.hparams,
                          knobs=self.knobs, budget=self.budget, batch_size=self.batch_size)

    def portable(self) -> PlanSpec:
        return dataclasses.replace(self, submission=portable_submission(self.submission))


@dataclasses.dataclass(frozen=True)
class WorkerTask:
    """A run as a worker receives it: the seed, the trial's point (None: the base plan), the study,
    and the config id the driver's plan has (a worker whose code differs refuses the run)."""

    seed: int
    point: Mapping[str, Any] | None
    study: StudyLink | None
    config_id: str


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    index: int
    host: str
    pid: int
    compile_seconds: float  # the worker's Sweep's compilation so far

    def describe(self) -> str:
        return f"worker {self.index} (pid {self.pid} on {self.host})"


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A finished run as data (store.export_run), with the worker's summary and state."""

    summary: RunSummary  # run_id: the worker's scratch id
    run: dict[str, Any]
    evals: list[dict[str, Any]]
    diagnostics: list[tuple[Any, ...]]
    worker: WorkerInfo
    seconds: float  # the worker's wall time in Sweep.run_seed


class SweepWorker:
    """A Ray actor's state: the plan rebuilt, a Sweep (data, compiled steps), a scratch database.

    Everything is built at the first call (`info` or `run`), also after Ray restarted the actor,
    so that an error there reaches the driver as the call's error."""

    def __init__(self, index: int, spec: PlanSpec, options: RunOptions) -> None:
        self.index, self.spec, self.given = index, spec, options
        self.scratch = tempfile.mkdtemp(prefix="harness-ray-worker-")
        self.options = dataclasses.replace(
            options, seeds=(), results=os.path.join(self.scratch, "runs.db"), progress=False,
            checkpoint_every=0, checkpoint_dir=os.path.join(self.scratch, "checkpoints"), tensorboard_dir=None)
        self.sweep: Sweep | None = None
        self.conn: Any = None

    def _protecting(self) -> Any:
        """The paths submission code may not open here (harness/audit.py), as on the driver."""
        return audit.protecting(self.options.data_dir, self.given.results, self.options.results)

    def _ready(self) -> Sweep:
        if self.sweep is None:
            with self._protecting():
                self.sweep = Sweep(self.spec.build(), self.options)
            self.conn = store.connect(self.options.results)
        return self.sweep

    def info(self) -> WorkerInfo:
        sweep = self._ready()
        me = process_identity.current()
        return WorkerInfo(self.index, me.host, me.pid, sweep.compile_seconds)

    def run(self, task: WorkerTask) -> RunRecord:
        sweep = self._ready()
        with self._protecting():
            run_plan = sweep.plan if task.point is None else sweep.plan.with_hparams(task.point)
            if run_plan.config_id != task.config_id:
                raise UserError(f"worker on {process_identity.current().host}: the plan's config id is "
                                f"{run_plan.config_id}, the driver's {task.config_id}: the code of the suite or "
                                "of the submission differs there; install the same version on every node")
            start = time.perf_counter()
            summary = sweep.run_seed(self.conn, task.seed, run_plan, task.study)
            seconds = time.perf_counter() - start
        run, evals, diagnostics = store.export_run(self.conn, summary.run_id)
        store.delete_run(self.conn, summary.run_id)
        return RunRecord(summary, run, evals, diagnostics, self.info(), seconds)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


@dataclasses.dataclass
class _Slot:
    """The driver's view of one worker."""

    handle: Any
    info: WorkerInfo
    compiled: set[str]  # compile keys it has compiled
    done: int = 0
    task: RunTask | None = None
    future: Any = None
    submitted: float = 0.0  # perf_counter() when its task was handed to it


def _cause(error: BaseException) -> BaseException:
    """The UserError a Ray task raised, for the one-line report; else the error itself."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, UserError) else error


class WorkerPool:
    """Ray workers for the runs of one base plan, started in the constructor (inside a
    ray_cluster.session); `map_runs` keeps them busy and writes what they return."""

    def __init__(self, spec: PlanSpec, base: RunPlan, options: RunOptions, settings: RaySettings,
                 runs: int) -> None:
        """`base`: the driver's plan of `spec` (every worker compiles its class first)."""
        count = ray_cluster.worker_count(settings, runs)
        actor = ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES)(SweepWorker).options(
            **ray_cluster.resources_per_run(settings), runtime_env=ray_cluster.runtime_env(settings))
        spec = spec.portable()
        options = dataclasses.replace(options, seeds=(), results=os.path.abspath(options.results),
                                      data_dir=os.path.abspath(options.data_dir) if options.data_dir else None)
        # The first worker compiles and fills the compilation cache; the others load from it.
        handles: list[Any] = [actor.remote(0, spec, options)]
        infos = self._get([handles[0].info.remote()])
        handles += [actor.remote(i, spec, options) for i in range(1, count)]
        infos += self._get([h.info.remote() for h in handles[1:]])
        self.slots = [_Slot(h, info, {base.compile_key}) for h, info in zip(handles, infos)]
        self._compile = {info.index: info.compile_seconds for info in infos}
        #: Per run written: (seconds from handing it to a worker to having written it, the worker's
        #: seconds in the run); the difference is Ray's and the driver's overhead (harness/bench_ray.py).
        self.timings: list[tuple[float, float]] = []
        found = ray_cluster.accelerator()
        extra = f", {found[1]} {found[0]}(s)" if found is not None else ""
        print(f"ray: {count} worker(s), {settings.cpus_per_run} CPU(s){extra} each: "
              + ", ".join(info.describe() for info in infos), flush=True)

    @property
    def compile_seconds(self) -> float:
        """Seconds the workers spent compiling, summed (a restarted worker's again)."""
        return sum(self._compile.values())

    @staticmethod
    def _get(futures: list[Any]) -> list[Any]:
        try:
            return list(ray.get(futures))
        except ray.exceptions.RayError as e:
            raise _cause(e) from None

    def map_runs(self, conn: Any, next_task: Callable[[], RunTask | None],
                 done: Callable[[RunTask, RunSummary], None], queued: Callable[[], int]) -> None:
        """Hand `next_task()`'s runs to idle workers (None: nothing more to start now) until none
        runs and none comes; write each finished run into `conn` and call `done` with its summary
        (run_id: the results database's). A worker that Ray gave up on ends the command (SeedsFailed)
        once the others' runs are in."""
        try:
            self._map_runs(conn, next_task, done, queued)
        except (interrupts.Interrupted, KeyboardInterrupt) as e:
            interrupted = interrupts.as_interrupted(e)
            assert interrupted is not None
            running = sum(s.task is not None for s in self.slots)
            raise interrupted.with_detail(f"{running} run(s) in flight on Ray workers not recorded; the same "
                                          "command runs them again") from None

    def _map_runs(self, conn: Any, next_task: Callable[[], RunTask | None],
                  done: Callable[[RunTask, RunSummary], None], queued: Callable[[], int]) -> None:
        lost: list[str] = []
        finished = False
        while True:
            while not lost and any(s.task is None for s in self.slots):
                task = next_task()
                if task is None:
                    break
                self._submit(task)
            if finished:  # after the next runs started
                tqdm.write(self._progress(queued()), file=sys.stdout)
                sys.stdout.flush()
            busy = [s for s in self.slots if s.task is not None]
            if not busy:
                break
            ready = self._wait([s.future for s in busy])
            slot = next(s for s in busy if s.future == ready[0])
            task, slot.task = slot.task, None
            assert task is not None
            try:
                record = ray.get(ready[0])
            except ray.exceptions.RayActorError as e:
                self.slots.remove(slot)
                lost.append(f"{slot.info.describe()} died {RETRIES + 1} times, the last while running "
                            f"{_describe(task)} ({' '.join(str(e).split())[:300]})")
                continue
            except ray.exceptions.RayError as e:
                raise _cause(e) from None
            done(task, self._write(conn, slot, task, record))
            finished = True
        if lost:
            raise SeedsFailed(f"ray: {'; '.join(lost)}; Ray's retries are spent; the runs not recorded run "
                              "again with the same command")

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        """Workers remove their scratch directories (Ray ends them with the session); not after an
        error or an interrupt, when a worker may still be in a run (the session's end stops it)."""
        if kind is None:
            ray.wait([s.handle.close.remote() for s in self.slots], num_returns=len(self.slots), timeout=30)

    def _wait(self, futures: list[Any]) -> list[Any]:
        """The first of `futures` to finish. Waits in steps of a second, so that SIGINT and SIGTERM
        are taken at once (harness/interrupts.py)."""
        try:
            while True:
                ready, _ = ray.wait(futures, num_returns=1, timeout=1.0)
                if ready:
                    return list(ready)
        except BaseException as e:
            # Ray's wait takes the signal and raises the handler's Interrupted as the cause of its own error.
            caught = [x for x in (e, e.__cause__, e.__context__) if x is not None]
            interrupted = next((i for i in map(interrupts.as_interrupted, caught) if i is not None), None)
            if interrupted is None:
                raise
            raise interrupted from None

    def _submit(self, task: RunTask) -> None:
        """To an idle worker, one that has the task's compile class compiled if there is one."""
        idle = [s for s in self.slots if s.task is None]
        key = task.plan.compile_key
        slot = next((s for s in idle if key in s.compiled), idle[0])
        slot.compiled.add(key)
        slot.task, slot.submitted = task, time.perf_counter()
        slot.future = slot.handle.run.remote(WorkerTask(task.seed, task.point, task.study, task.plan.config_id))

    def _write(self, conn: Any, slot: _Slot, task: RunTask, record: RunRecord) -> RunSummary:
        """The run into the results database (one writer: this process); its summary with the new id."""
        if record.worker.pid != slot.info.pid:
            tqdm.write(f"ray: {slot.info.describe()} was restarted by Ray (now pid {record.worker.pid} on "
                       f"{record.worker.host}); its run ({_describe(task)}) ran again", file=sys.stdout)
        slot.info = record.worker
        self._compile[record.worker.index] = record.worker.compile_seconds
        slot.done += 1
        run_id = store.import_run(conn, record.run, record.evals, record.diagnostics)
        self.timings.append((time.perf_counter() - slot.submitted, record.seconds))
        return dataclasses.replace(record.summary, run_id=run_id)

    def _progress(self, queued: int) -> str:
        """One line: runs done, running and queued, in all and per worker."""
        running = sum(s.task is not None for s in self.slots)
        done = sum(s.done for s in self.slots)
        workers = "; ".join(f"{s.info.describe()}: {s.done} done, "
                            + (f"running {_describe(s.task)}" if s.task is not None else "idle")
                            for s in self.slots)
        return f"ray: {done} done, {running} running, {queued} queued | {workers}"


def _describe(task: RunTask) -> str:
    """'seed 3', 'trial seed 1234567890', 'confirmation seed 3'."""
    return f"{task.study.role + ' ' if task.study else ''}seed {task.seed}"


def run_sweep(run_plan: RunPlan, spec: PlanSpec, options: RunOptions, settings: RaySettings
              ) -> list[RunSummary]:
    """`harness run --ray`: the seeds `harness run` would run (runner.skipped decides, as there), on
    Ray workers; the summaries in the order of the seeds."""
    conn = store.connect(options.results)
    try:
        seeds = [seed for seed in options.seeds if not skipped(conn, run_plan, options, seed)]
        print(f"{run_plan.describe()}; {len(options.seeds)} seed(s), {len(seeds)} to run on Ray", flush=True)
        if not seeds:
            return []
        pending = collections.deque(seeds)
        summaries: dict[int, RunSummary] = {}

        def finished(task: RunTask, summary: RunSummary) -> None:
            summaries[task.seed] = summary
            print(summary_line(summary, run_plan), flush=True)

        with ray_cluster.session(settings):
            start = time.perf_counter()
            with WorkerPool(spec, run_plan, options, settings, len(seeds)) as pool:
                print(f"ray: workers ready in {time.perf_counter() - start:.1f} s (compiled in "
                      f"{pool.compile_seconds:.1f} s in all)", flush=True)
                pool.map_runs(conn, lambda: RunTask(run_plan, pending.popleft()) if pending else None, finished,
                              lambda: len(pending))
        return [summaries[s] for s in seeds if s in summaries]
    finally:
        conn.close()
