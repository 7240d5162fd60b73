"""The training loop: a plan (harness/plan.py) compiled once, then each seed trained under the step
budget, evaluated on the workload's cadence (harness/evaluation.py) and recorded in the results
store (harness/recording.py)."""

from __future__ import annotations

import collections
import dataclasses
import sys
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from harness import environment, parallel, recording, store, tensorboard
from harness.errors import UserError
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

    seeds: tuple[int, ...] = (0,)
    results: str = "results/results.db"
    data_dir: str | None = None
    stop_at_target: bool = False
    progress: bool = True
    # Record the submission's diagnostics (if it defines any) of every k-th step; 0: never.
    diagnostics_every: int = 10
    # Also write each run's evaluations as a TensorBoard log under this directory (harness/tensorboard.py).
    tensorboard_dir: str | None = None


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
        state = TrainState(params, model_state, plan.submission.init(params, first.hparams, first.ctx))
        # One fresh replicated buffer per leaf: the step may donate its input state (an init may alias).
        return parallel.put_replicated(jax.tree.map(lambda x: jnp.array(x, copy=True), state), plan.mesh)

    def _start_phase(self, plan: RunPlan, state: TrainState, k: int) -> TrainState:
        """At the start of phase k > 0: the submission's optional next_phase hook (on the host)."""
        next_phase = plan.submission.next_phase
        if k == 0 or next_phase is None:
            return state
        p = plan.phases[k]
        opt_state = next_phase(state.opt_state, state.params, p.hparams, p.ctx)
        return TrainState(state.params, state.model_state, parallel.put_replicated(opt_state, plan.mesh))

    def run_seed(self, conn: Any, seed: int, plan: RunPlan | None = None,
                 study: recording.StudyLink | None = None) -> RunSummary:
        """Train `seed` of `plan` (default: the sweep's) for the budget (or to the target with
        stop_at_target) and record it (as part of `study` if given)."""
        plan = self.plan if plan is None else plan
        compiled = self.compiled(plan)
        recorder = recording.start(conn if self.primary else None, plan, seed, compiled.seconds,
                                   self.environment, self.git_revision, self.options.tensorboard_dir, study)
        outcome = recording.Outcome(self.workload.direction, self.workload.target)
        clock, evals = Clock(), Clock()
        bar = tqdm(total=plan.budget, desc=f"{plan.submission.name} seed {seed}", unit="step",
                   leave=False, disable=not self.options.progress, file=sys.stderr, dynamic_ncols=True)
        try:
            status = self._train(plan, compiled, seed, recorder, outcome, clock, evals, bar)
        except BaseException as e:
            bar.close()
            recorder.finish("failed", outcome, clock.seconds, error=f"{type(e).__name__}: {e}"[:500])
            raise
        bar.close()
        recorder.finish(status, outcome, clock.seconds)
        return RunSummary(recorder.run_id, seed, status, outcome.steps_done, outcome.steps_to_target,
                          outcome.seconds_to_target, outcome.best_valid, outcome.final_train,
                          clock.seconds, evals.seconds)

    def _train(self, plan: RunPlan, compiled: CompiledSteps, seed: int, recorder: recording.Recorder,
               outcome: recording.Outcome, clock: Clock, evals: Clock, bar: Any) -> str:
        """The step loop over the phases; returns the status ('completed' or 'diverged')."""
        init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
        state = self._initial_state(init_key, plan)
        check_state_matches(plan, state, compiled.abstract_state)
        pending, watch = PendingMetrics(self.options.diagnostics_every), DivergenceWatch()
        jax.block_until_ready(state)
        clock.start()
        end = 0
        for k, p in enumerate(plan.phases):
            state = self._start_phase(plan, state, k)
            batches: Iterator[Any] = self.workload.train_batches(self.data, seed, k)
            train_step, traced = compiled.steps[k], plan.traced_arguments(k)
            start, end = end, end + p.phase.steps
            for step in range(start + 1, end + 1):
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
                evals.stop()
                if self.options.stop_at_target and outcome.reached:
                    return "completed"
                clock.start()
        return "completed"

    def _evaluate(self, state: TrainState, step: int, train_seconds: float, pending: PendingMetrics,
                  recorder: recording.Recorder, outcome: recording.Outcome) -> None:
        """Evaluate on every split, record the evaluation and the diagnostics since the last one."""
        sums, diagnostics = pending.drain()
        train_loss, train_metric = mean_loss_and_metric(sums, self.workload.metric)
        valid_loss, valid = self.evaluator.split(state, "validation")
        test_loss, test = self.evaluator.split(state, "test")
        result = EvalResult(step, train_seconds, train_loss, train_metric, valid_loss, valid, test_loss, test)
        recorder.record_eval(result, diagnostics)
        outcome.observe(result)

    def summary_line(self, s: RunSummary, plan: RunPlan | None = None) -> str:
        wl, plan = self.workload, self.plan if plan is None else plan

        def fmt(v: float | None) -> str:
            return format_metric(v, wl.metric) if v is not None else "n/a"

        target = format_metric(wl.target, wl.metric)
        reached = (f"target {target} reached at step {s.steps_to_target} ({s.seconds_to_target:.1f} s)"
                   if s.steps_to_target is not None else f"target {target} missed")
        return (f"[run {s.run_id}] {wl.name} {plan.submission.name} seed {s.seed}: {s.status} at step "
                f"{s.steps_done}/{plan.budget}; best valid {wl.metric} {fmt(s.best_valid)}; {reached}; "
                f"final train {fmt(s.final_train)}; {s.train_seconds:.1f} s training + "
                f"{s.eval_seconds:.1f} s eval")


def check_state_matches(plan: RunPlan, state: TrainState, expected: TrainState) -> None:
    """The initial state has the shapes the compiled step takes: the optimizer state's structure
    may depend only on static hparams (harness/spec.py); a submission that breaks that rule gets a
    one-line error instead of XLA's argument mismatch."""
    if not same_shapes(expected, state):
        raise UserError(f"submission {plan.submission.name}: the optimizer state's structure changes "
                        "with a traced hparam; name the hparam in STATIC_HPARAMS (harness/spec.py)")


def run_sweep(plan: RunPlan, options: RunOptions) -> list[RunSummary]:
    """Compile once, then train every seed; a diverged seed does not stop the sweep."""
    sweep = Sweep(plan, options)
    print(f"{plan.describe()}; {len(options.seeds)} seed(s), compiled in {sweep.compile_seconds:.1f} s",
          flush=True)
    conn = store.connect(options.results)
    try:
        summaries = []
        for seed in options.seeds:
            summary = sweep.run_seed(conn, seed)
            if sweep.primary:
                print(sweep.summary_line(summary), flush=True)
            summaries.append(summary)
        return summaries
    finally:
        conn.close()
