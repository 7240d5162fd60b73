"""The training loop: a plan (harness/plan.py) compiled once, then each seed trained under the step
budget, evaluated on the workload's cadence (harness/evaluation.py) and recorded in the results
store (harness/recording.py)."""

from __future__ import annotations

import collections
import dataclasses
import sys
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from harness import (
    audit,
    checkpoints,
    environment,
    interrupts,
    parallel,
    recording,
    store,
    submission_loader,
    tensorboard,
)
from harness.errors import SeedsFailed, UserError
from harness.evaluation import EvalResult, Evaluator, host_sums, mean_loss_and_metric
from harness.formatting import format_metric
from harness.plan import RunPlan
from harness.submission_checks import same_shapes
from harness.training import DIAGNOSTICS, TrainState
from workloads import targets
from workloads.data.common import host_share


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a plan's seeds are run (nothing here changes what a seed computes)."""

    seeds: Sequence[int] = (0,)  # cli.Seeds: ranges, never materialised
    results: str = "results/results.db"
    data_dir: str | None = None
    stop_at_target: bool = False
    progress: bool = True
    # Record the submission's diagnostics (if it defines any) of every k-th step; 0: never.
    diagnostics_every: int = 10
    # Also write each run's evaluations as a TensorBoard log under this directory (harness/tensorboard.py).
    tensorboard_dir: str | None = None
    # Steps between checkpoints (taken at evaluations, harness/checkpoints.py); 0: none; None: the
    # workload's default (full-scale workloads: every evaluation).
    checkpoint_every: int | None = None
    checkpoint_dir: str | None = None  # None: next to the results database (checkpoints.default_dir)
    # A seed whose latest attempt of this row finished (completed or diverged) is skipped unless True.
    rerun: bool = False
    # A run whose mean training loss between evaluations exceeds this multiple of its first one
    # ended as diverged (a loss of 4e7 is as diverged as NaN); 0: only non-finite losses.
    divergence_factor: float = 100.0

    @property
    def checkpoint_root(self) -> str:
        return self.checkpoint_dir or checkpoints.default_dir(self.results)


@dataclasses.dataclass(frozen=True)
class RunTask:
    """One run to do: `seed` of `plan`, as part of `study` if given. `point`: the searched hparams
    that made `plan` from the study's base plan (a trial), for a worker that rebuilds the plan
    there (harness/ray_runner.py); None: the base plan itself."""

    plan: RunPlan
    seed: int
    study: recording.StudyLink | None = None
    point: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class RunSummary:
    run_id: int
    seed: int
    status: str
    steps_done: int
    steps_to_target: int | None
    seconds_to_target: float | None
    best_valid: float | None
    final_train: float | None
    train_seconds: float
    eval_seconds: float
    error: str | None = None  # the failure of a `failed` run, one line


class DivergenceWatch:
    """The 'finite' flags of dispatched steps, read as soon as each is computed, never waited for.

    Waiting on the flag of the step just dispatched would stall the pipeline (~10% slower on CPU);
    waiting on one a few steps back still cost ~3%. Polling `is_ready()` costs nothing, and a
    divergence is seen one step after the device computed it.
    """

    def __init__(self) -> None:
        # Any, not jax.Array: is_ready() is a method of the runtime's arrays, not of the jax.Array type.
        self._queue: collections.deque[tuple[int, Any]] = collections.deque()

    def add(self, step: int, finite: jax.Array) -> None:
        self._queue.append((step, finite))

    def first_diverged(self, wait: bool = False) -> int | None:
        """The first step whose flag is False among those computed (all of them with `wait`)."""
        while self._queue and (wait or self._queue[0][1].is_ready()):
            step, finite = self._queue.popleft()
            if not bool(finite):
                self._queue.clear()
                return step
        return None


class PendingMetrics:
    """The training metrics of the steps since the last evaluation, and the diagnostics of every
    k-th of them, still on the device: read in one transfer at the evaluation."""

    def __init__(self, diagnostics_every: int) -> None:
        self.every = diagnostics_every
        self.sums: list[dict[str, jax.Array]] = []
        self.diagnostics: list[tuple[int, Any]] = []

    def add(self, step: int, metrics: dict[str, Any]) -> None:
        diagnostics = metrics.pop(DIAGNOSTICS, None)
        if diagnostics is not None and step % self.every == 0:
            self.diagnostics.append((step, diagnostics))
        self.sums.append(metrics)

    def drain(self) -> tuple[dict[str, float], list[tuple[int, Any]]]:
        """(host sums of the training metrics, [(step, host diagnostics)]) and start afresh."""
        values, diagnostics = jax.device_get((self.sums, self.diagnostics))
        self.sums, self.diagnostics = [], []
        return host_sums(values), diagnostics


class Clock:
    """Training seconds: counts between start() and stop() (evaluations happen while stopped)."""

    def __init__(self) -> None:
        self.seconds, self._since = 0.0, 0.0

    def start(self) -> None:
        self._since = time.perf_counter()

    def stop(self) -> float:
        self.seconds += time.perf_counter() - self._since
        return self.seconds


@dataclasses.dataclass(frozen=True)
class CompiledSteps:
    """One compile class's training steps (one per phase), with the state shapes they take."""

    steps: list[Any]
    abstract_state: TrainState
    seconds: float  # compilation and warm-up


class Sweep:
    """A workload's data and compiled steps; `run_seed` trains one seed of a plan.

    Plans that differ only in traced hparams (RunPlan.compile_key: the trials of a tuning study)
    share one compilation; another compile class is compiled when first run.
    """

    def __init__(self, plan: RunPlan, options: RunOptions = RunOptions()) -> None:
        # The plan validated the user's input; what remains is checked before anything is written.
        if options.diagnostics_every < 0:
            raise UserError(f"--diagnostics_every must be >= 0 (0: never record), got "
                            f"{options.diagnostics_every}")
        store.check_results(options.results)
        if options.checkpoint_every is not None and options.checkpoint_every < 0:
            raise UserError(f"--checkpoint_every must be >= 0 (0: no checkpoints), got {options.checkpoint_every}")
        if not options.divergence_factor >= 0:
            raise UserError(f"--divergence_factor must be >= 0 (0: off), got {options.divergence_factor}")
        checkpoints.check_dir(options.checkpoint_root)
        if options.tensorboard_dir is not None:
            tensorboard.check(options.tensorboard_dir)
        self.plan, self.options = plan, options
        self.workload = plan.workload
        self.data = self.workload.load_data(options.data_dir)
        fingerprint = targets.data_fingerprint(self.data)
        warning = targets.fingerprint_warning(self.workload.name, fingerprint)
        if warning:
            print(warning, file=sys.stderr)
        self.environment = store.canonical_json({**environment.environment(),
                                                 "data_fingerprint": fingerprint})
        self.git_revision = environment.git_revision()
        self.primary = jax.process_index() == 0
        # Values from the jitted init (an eager ResNet-50 init takes 12-22 s on CPU, jitted ~1 s).
        self._init = jax.jit(lambda rng: self.workload.init(rng)[:2])
        self._compiled: dict[str, CompiledSteps] = {}
        start = time.perf_counter()
        self.evaluator = Evaluator(plan, self.data)
        with interrupts.deferred():  # compiles the evaluation step
            self.evaluator.warm_up(self._initial_state(jax.random.PRNGKey(0), plan))
        evaluator_seconds = time.perf_counter() - start
        #: Seconds spent compiling (and warming up) so far: the eval step and every compile class.
        self.compile_seconds = evaluator_seconds + self.compiled(plan).seconds

    def compiled(self, plan: RunPlan) -> CompiledSteps:
        """The compiled steps of `plan`'s compile class (compiled now if it is new).

        Ahead-of-time compilation of each phase's train step (from shapes: RunPlan), then one
        warm-up execution of each, all timed as compile time. Why the warm-up: the first execution
        of a compiled step pays a one-time initialisation of the runtime (measured on CPU,
        fashion_mnist_resnet: 1.55 s for the first step, 0.34 s for the next ones). Without it,
        that second would count as training time of the first seed of every sweep and none of the
        others. The warm-up runs on throwaway values (an all-zero batch); each step consumes the
        state the previous one returned (a donated input is gone), so no second copy of the state
        is ever alive.
        """
        if plan.workload is not self.workload or plan.mesh is not self.plan.mesh:
            raise ValueError("a Sweep runs plans of its own workload instance and mesh")
        key = plan.compile_key
        if key not in self._compiled:
            start = time.perf_counter()
            diagnostics = self.options.diagnostics_every > 0
            with interrupts.deferred():  # a signal in XLA's compiler is taken when it returns
                steps = [plan.compile_train_step(k, diagnostics=diagnostics) for k in range(len(plan.phases))]
            state = self._initial_state(jax.random.PRNGKey(0), plan)
            for k, step in enumerate(steps):
                state, _ = step(state, self._zero_batch(k), jax.random.PRNGKey(0), np.int32(0),
                                plan.traced_arguments(k))
            jax.block_until_ready(state)
            seconds = time.perf_counter() - start
            self._compiled[key] = CompiledSteps(steps, plan.abstract_state(), seconds)
            if key != self.plan.compile_key:
                self.compile_seconds += seconds
        return self._compiled[key]

    def _zero_batch(self, k: int) -> Any:
        """An all-zero training batch of phase k (this process's share), on the mesh."""
        local, _ = host_share(self.plan.phases[k].phase.global_batch_size)
        zeros = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), self.workload.abstract_batch(local, k))
        return parallel.put_batch(zeros, self.plan.mesh)

    def _initial_state(self, init_key: jax.Array, plan: RunPlan) -> TrainState:
        params, model_state = self._init(init_key)
        first = plan.phases[0]
        with submission_loader.guard(plan.submission):  # its code (harness/audit.py)
            opt_state = plan.submission.init(params, first.hparams, first.ctx)
        state = TrainState(params, model_state, opt_state)
        # One fresh replicated buffer per leaf: the step may donate its input state (an init may alias).
        return parallel.put_replicated(jax.tree.map(lambda x: jnp.array(x, copy=True), state), plan.mesh)

    def _start_phase(self, plan: RunPlan, state: TrainState, k: int) -> TrainState:
        """At the start of phase k > 0: the submission's optional next_phase hook (on the host)."""
        next_phase = plan.submission.next_phase
        if k == 0 or next_phase is None:
            return state
        p = plan.phases[k]
        with submission_loader.guard(plan.submission):
            opt_state = next_phase(state.opt_state, state.params, p.hparams, p.ctx)
        return TrainState(state.params, state.model_state, parallel.put_replicated(opt_state, plan.mesh))

    def checkpoint_every(self) -> int:
        """Steps between checkpoints: the option, else the workload's default."""
        every = self.options.checkpoint_every
        return self.workload.checkpoint_every if every is None else every

    def run_seed(self, conn: Any, seed: int, plan: RunPlan | None = None,
                 study: recording.StudyLink | None = None) -> RunSummary:
        """Train `seed` of `plan` (default: the sweep's) for the budget (or to the target with
        stop_at_target) and record it (as part of `study` if given).

        An interrupted attempt of the same row and seed with a checkpoint is resumed from it (the
        same run, `resumes` counted). SIGINT or SIGTERM record the run as `interrupted` and raise
        Interrupted; any other error of the run records it as `failed` with its traceback and
        returns (the sweep goes on), except bad input (UserError), which ends the sweep.
        """
        plan = self.plan if plan is None else plan
        compiled = self.compiled(plan)
        resume = self._resumable(conn, plan, seed, study)
        if resume is not None:
            run_id, step = resume
            if self.primary:
                print(f"seed {seed}: resuming run {run_id} from its checkpoint at step {step}", flush=True)
            recorder = recording.resume(conn if self.primary else None, plan, run_id, seed, step,
                                        self.options.tensorboard_dir)
        else:
            recorder = recording.start(conn if self.primary else None, plan, seed, compiled.seconds,
                                       self.environment, self.git_revision, self.options.tensorboard_dir, study,
                                       stop_at_target=self.options.stop_at_target)
        saved = checkpoints.RunCheckpoints(self.options.checkpoint_root, int(_from_process_0(recorder.run_id)))
        outcome = recording.Outcome(self.workload.direction, self.workload.target)
        clock, evals = Clock(), Clock()
        bar = tqdm(total=plan.budget, desc=f"{plan.submission.name} seed {seed}", unit="step",
                   leave=False, disable=not self.options.progress, file=sys.stderr, dynamic_ncols=True)
        error: str | None = None
        try:
            with submission_loader.guard(plan.submission):  # its init, next_phase, host callbacks
                status = self._train(plan, compiled, seed, recorder, outcome, clock, evals, bar, saved,
                                     resume is not None)
        except BaseException as e:
            bar.close()
            interrupted = interrupts.as_interrupted(e)
            if interrupted is not None:
                recorder.finish("interrupted", outcome, clock.seconds)
                saved.close()
                saved_at = saved.latest_step()
                since = f"its checkpoint at step {saved_at}" if saved_at is not None else "step 1 (no checkpoint)"
                raise interrupted.with_detail(
                    f"run {recorder.run_id} ({plan.submission.name} seed {seed}) recorded as interrupted at step "
                    f"{outcome.steps_done}; the same command resumes it from {since}") from None
            error = "".join(traceback.format_exception(e))[-4000:]
            recorder.finish("failed", outcome, clock.seconds, error=f"{type(e).__name__}: {e}\n{error}")
            saved.remove()
            if isinstance(e, SystemExit):  # sys.exit in the submission's code: not the harness's exit
                raise audit.exit_error(plan.submission.name, f"while training seed {seed}", e) from None
            if isinstance(e, UserError) or not isinstance(e, Exception):
                raise
            _discard_failed_effects()
            return RunSummary(recorder.run_id, seed, "failed", outcome.steps_done, None, None, outcome.best_valid,
                              outcome.final_train, clock.seconds, evals.seconds, _root_cause(e))
        bar.close()
        recorder.finish(status, outcome, clock.seconds)
        saved.remove()
        return RunSummary(recorder.run_id, seed, status, outcome.steps_done, outcome.steps_to_target,
                          outcome.seconds_to_target, outcome.best_valid, outcome.final_train,
                          clock.seconds, evals.seconds)

    def _resumable(self, conn: Any, plan: RunPlan, seed: int, study: recording.StudyLink | None
                   ) -> tuple[int, int] | None:
        """(run_id, checkpoint step) of the latest attempt of this row and seed when it was
        interrupted and has a checkpoint; the same answer on every process."""
        found: tuple[int, int] | None = None
        if self.primary:
            run = store.latest_attempt(conn, plan.workload.name, plan.config_id, seed,
                                       study.study_id if study else None, study.role if study else None)
            if run is not None and run["status"] == "interrupted":
                step = checkpoints.RunCheckpoints(self.options.checkpoint_root, run["run_id"]).latest_step()
                found = (run["run_id"], step) if step is not None else None
        shared = _from_process_0(np.array(found or (-1, -1), np.int64))
        return None if shared[0] < 0 else (int(shared[0]), int(shared[1]))

    def _train(self, plan: RunPlan, compiled: CompiledSteps, seed: int, recorder: recording.Recorder,
               outcome: recording.Outcome, clock: Clock, evals: Clock, bar: Any,
               saved: checkpoints.RunCheckpoints, resume: bool) -> str:
        """The step loop over the phases (from the checkpoint when resuming); returns the status
        ('completed' or 'diverged')."""
        init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
        state = self._initial_state(init_key, plan)
        check_state_matches(plan, state, compiled.abstract_state)
        first = 0
        if resume:
            state, progress = saved.restore(state)
            first = progress.step
            outcome.restore(progress.outcome)
            clock.seconds, evals.seconds = progress.train_seconds, progress.eval_seconds
            bar.update(first)
        every, last_saved = self.checkpoint_every(), first
        pending, watch = PendingMetrics(self.options.diagnostics_every), DivergenceWatch()
        jax.block_until_ready(state)
        clock.start()
        end = 0
        for k, p in enumerate(plan.phases):
            start, end = end, end + p.phase.steps
            if end <= first:
                continue  # a phase the checkpoint is past
            if first <= start:
                state = self._start_phase(plan, state, k)
            begin = max(start, first)
            batches: Iterator[Any] = self.workload.train_batches(self.data, seed, k, start=begin - start)
            train_step, traced = compiled.steps[k], plan.traced_arguments(k)
            for step in range(begin + 1, end + 1):
                interrupts.check()  # a signal whose Interrupted a __del__ swallowed (harness/interrupts.py)
                outcome.steps_done = step
                batch = parallel.put_batch(next(batches), plan.mesh)
                state, metrics = train_step(state, batch, train_key, np.int32(step - 1), traced)
                pending.add(step, metrics)
                watch.add(step, metrics["finite"])
                bar.update(1)
                at_eval = step % self.workload.eval_every_steps == 0 or step == end
                diverged_at = watch.first_diverged(wait=at_eval)
                if diverged_at is not None:
                    clock.stop()
                    outcome.steps_done = diverged_at
                    return "diverged"
                if not at_eval:
                    continue
                jax.block_until_ready(state)
                clock.stop()
                evals.start()
                self._evaluate(state, step, clock.seconds, pending, recorder, outcome)
                bar.set_postfix_str(f"valid {self.workload.metric} {outcome.final_valid:.4f}")
                if outcome.loss_diverged(self.options.divergence_factor):
                    evals.stop()
                    return "diverged"
                if self.options.stop_at_target and outcome.reached:
                    evals.stop()
                    return "completed"
                if every and step - last_saved >= every and step < plan.budget:
                    evals.stop()  # the checkpoint holds the seconds so far
                    saved.save(state, checkpoints.Progress(step, outcome.progress(), clock.seconds, evals.seconds,
                                                           plan.config_id, seed))
                    recorder.record_checkpoint(step)
                    last_saved = step
                else:
                    evals.stop()
                clock.start()
        return "completed"

    def _evaluate(self, state: TrainState, step: int, train_seconds: float, pending: PendingMetrics,
                  recorder: recording.Recorder, outcome: recording.Outcome) -> None:
        """Evaluate on every split, record the evaluation and the diagnostics since the last one."""
        sums, diagnostics = pending.drain()
        train_loss, train_metric = mean_loss_and_metric(sums, self.workload.metric)
        scores = self.evaluator.evaluate(state)
        (valid_loss, valid), (test_loss, test) = scores["validation"], scores["test"]
        result = EvalResult(step, train_seconds, train_loss, train_metric, valid_loss, valid, test_loss, test)
        recorder.record_eval(result, diagnostics)
        outcome.observe(result)

    def summary_line(self, s: RunSummary, plan: RunPlan | None = None) -> str:
        return summary_line(s, self.plan if plan is None else plan)


def summary_line(s: RunSummary, plan: RunPlan) -> str:
    """One line of a finished run: status, best validation metric, time to target, seconds."""
    wl = plan.workload

    def fmt(v: float | None) -> str:
        return format_metric(v, wl.metric) if v is not None else "n/a"

    if s.status == "failed":
        return (f"[run {s.run_id}] {wl.name} {plan.submission.name} seed {s.seed}: failed at step "
                f"{s.steps_done}/{plan.budget}: {s.error}")
    target = format_metric(wl.target, wl.metric)
    reached = (f"target {target} reached at step {s.steps_to_target} ({s.seconds_to_target:.1f} s)"
               if s.steps_to_target is not None else f"target {target} missed")
    return (f"[run {s.run_id}] {wl.name} {plan.submission.name} seed {s.seed}: {s.status} at step "
            f"{s.steps_done}/{plan.budget}; best valid {wl.metric} {fmt(s.best_valid)}; {reached}; "
            f"final train {fmt(s.final_train)}; {s.train_seconds:.1f} s training + "
            f"{s.eval_seconds:.1f} s eval")


def _root_cause(error: BaseException) -> str:
    """One line for a failed run's summary: the error's last line (a host callback's error reaches
    the harness wrapped in JAX's runtime error, its traceback in the message, the cause last)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1:
        return lines[-1]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _discard_failed_effects() -> None:
    """A host callback that raised leaves its error in JAX's runtime tokens, which JAX raises again
    at the next effects barrier and at exit (a traceback after the sweep's summary line). The run
    is recorded as failed with the error: drop them. No public JAX API clears them, hence the
    private module (only reached after a failure)."""
    try:
        jax.effects_barrier()
    except Exception:  # the recorded failure, raised again
        from jax._src import dispatch

        dispatch.runtime_tokens.clear()


def _from_process_0(value: Any) -> Any:
    """Process 0's `value` on every process (it alone reads and writes the results store)."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return multihost_utils.broadcast_one_to_all(np.asarray(value))


def check_state_matches(plan: RunPlan, state: TrainState, expected: TrainState) -> None:
    """The initial state has the shapes the compiled step takes: the optimizer state's structure
    may depend only on static hparams (harness/spec.py); a submission that breaks that rule gets a
    one-line error instead of XLA's argument mismatch."""
    if not same_shapes(expected, state):
        raise UserError(f"submission {plan.submission.name}: the optimizer state's structure changes "
                        "with a traced hparam; name the hparam in STATIC_HPARAMS (harness/spec.py)")


def run_sweep(plan: RunPlan, options: RunOptions) -> list[RunSummary]:
    """Compile once, then train every seed. A seed whose latest attempt of this row finished is
    skipped (unless options.rerun), one still running elsewhere too; an interrupted one is resumed
    from its checkpoint; a diverged or failed seed does not stop the sweep (raise_if_failed sums
    the failures up). The seeds to run are read before compiling (a sweep with none compiles
    nothing) and again before each run (another process may have started it meanwhile); the
    results file is opened for writing only after the data loaded and the step compiled, so bad
    input found there leaves it as it was."""
    with store.reading_if_any(options.results) as recorded:
        seeds = [seed for seed in options.seeds if not skipped(recorded, plan, options, seed)]
    if not seeds:
        print(f"{plan.describe()}; {len(options.seeds)} seed(s), all recorded: nothing to run", flush=True)
        return []
    sweep = Sweep(plan, options)
    print(f"{plan.describe()}; {len(options.seeds)} seed(s), {len(seeds)} to run, compiled in "
          f"{sweep.compile_seconds:.1f} s", flush=True)
    conn = store.connect(options.results)
    try:
        summaries = []
        for seed in seeds:
            if skipped(conn, plan, options, seed):
                continue
            summary = sweep.run_seed(conn, seed)
            if sweep.primary:
                print(sweep.summary_line(summary), flush=True)
            summaries.append(summary)
        return summaries
    finally:
        conn.close()


def skipped(conn: Any, plan: RunPlan, options: RunOptions, seed: int) -> bool:
    """Whether `seed` of `plan` is not run (skip_reason, printed), unless options.rerun; `conn`:
    the results database (None: no results yet). Process 0, which alone reads the results store,
    decides for every process of a multi-host run."""
    reason = None
    if conn is not None and not options.rerun and jax.process_index() == 0:
        reason = skip_reason(store.latest_attempt(conn, plan.workload.name, plan.config_id, seed), options)
        if reason:
            print(f"seed {seed}: {reason}", flush=True)
    return bool(_from_process_0(reason is not None))


def raise_if_failed(summaries: list[RunSummary]) -> None:
    """SeedsFailed (one line: how many, which runs, the first error) if any seed failed."""
    failed = [s for s in summaries if s.status == "failed"]
    if failed:
        raise SeedsFailed(f"{len(failed)} of {len(summaries)} seed(s) failed (run(s) "
                          f"{', '.join(str(s.run_id) for s in failed)}; each run's `error` column holds its "
                          f"traceback); first: seed {failed[0].seed}: {failed[0].error}")


def skip_reason(run: dict[str, Any] | None, options: RunOptions) -> str | None:
    """Why a seed is not run again: its latest attempt of the row finished, or runs now."""
    if run is None:
        return None
    if run["status"] in ("completed", "diverged") and run.get("stop_at_target") == int(options.stop_at_target):
        return (f"already recorded (run {run['run_id']}, {run['status']}); skipped (--rerun runs it again "
                "as a new attempt)")
    if run["status"] == "running":
        return (f"run {run['run_id']} is running it (pid {run['pid']} on {run['host']}); skipped (--rerun "
                "runs it again here)")
    return None
