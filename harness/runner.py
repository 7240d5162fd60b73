"""Runs one submission on one workload for several seeds: compile once, train each seed under the
step budget, evaluate on the cadence, record every eval in the results store."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from harness import environment, parallel, store
from harness import submissions as submission_loader
from harness.hparams import validate_phase_hparams
from harness.protocol import check_submission
from harness.spec import Phase, SubmissionContext, UserError, Workload
from harness.training import (DIAGNOSTICS, TrainState, abstract_init, donate_state,
                              make_eval_step, make_train_step)
from workloads import get_workload, targets


class DivergenceWatch:
    """The 'finite' flags of dispatched steps, read as soon as each is computed, never waited for.

    Waiting on the flag of the step just dispatched would stall the pipeline (~10% slower on CPU);
    waiting on one a few steps back still cost ~3%. Polling `is_ready()` costs nothing, and a
    divergence is seen one step after the device computed it.
    """

    def __init__(self) -> None:
        self._queue: collections.deque[tuple[int, jax.Array]] = collections.deque()

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


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    workload: str
    submission: str
    # One mapping for every phase, or a list with one mapping per phase (Nado et al. Table 8).
    hparams: Mapping[str, Any] | Sequence[Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    knobs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)
    budget: int | None = None  # overrides the workload's step budget
    results: str = "results/results.db"
    data_dir: str | None = None
    stop_at_target: bool = False
    progress: bool = True
    # Record the submission's diagnostics (if it defines any) of every k-th step; 0: never.
    diagnostics_every: int = 10
    # The named configuration the hparams and knobs came from, with what was set on top of it
    # (e.g. "mlperf learning_rate=10"): the leaderboard's description of the row; None if none.
    config_label: str | None = None


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


def config_id(submission: str, hparams: Any, knobs: Mapping[str, Any], budget: int) -> str:
    """Stable short id of a leaderboard row (never Python's salted hash())."""
    key = store.canonical_json({"submission": submission, "hparams": hparams, "knobs": knobs,
                                "budget": budget})
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def host_sums(trees: list[dict[str, Any]]) -> dict[str, float]:
    """Sum dicts of device scalars on the host (one transfer, no per-length XLA compilation).

    The "diagnostics" entry of a step's metrics (values, not sums) is left out.
    """
    values = jax.device_get(trees)
    return {key: float(sum(v[key] for v in values)) for key in values[0] if key != DIAGNOSTICS}


def diagnostic_rows(steps_and_values: list[tuple[int, Mapping[str, Any]]]
                    ) -> list[tuple[int, str, float | None]]:
    """(step, name, value) rows of host diagnostics; an array of n > 1 values gives name/0..n-1.
    NaN (undefined, e.g. a grafting ratio whose D step was zero) is stored as NULL."""
    rows: list[tuple[int, str, float | None]] = []
    for step, values in steps_and_values:
        for name, value in values.items():
            flat = np.asarray(value, dtype=np.float64).ravel()
            names = [name] if flat.size == 1 else [f"{name}/{i}" for i in range(flat.size)]
            rows.extend((step, n, float(v) if np.isfinite(v) else None) for n, v in zip(names, flat))
    return rows


def scaled_phases(phases: tuple[Phase, ...], budget: int | None) -> tuple[Phase, ...]:
    """The workload's phases, or with --budget: the phases scaled to `budget` steps in total.

    One phase gets exactly `budget` steps. Several keep their proportions (each at least one step,
    the last takes the rounding remainder), so a short run still visits every phase.
    """
    if budget is None:
        return phases
    if budget <= 0:
        raise UserError(f"--budget must be a positive number of steps, got {budget}")
    if budget < len(phases):
        raise UserError(f"--budget={budget} is smaller than the number of phases ({len(phases)}); "
                        "give at least one step per phase")
    total = sum(p.steps for p in phases)
    steps: list[int] = []
    for i, p in enumerate(phases[:-1]):
        later = len(phases) - i - 1  # phases after this one, each needs a step
        steps.append(min(max(1, round(p.steps * budget / total)), budget - sum(steps) - later))
    steps.append(budget - sum(steps))
    return tuple(dataclasses.replace(p, steps=n) for p, n in zip(phases, steps))


class NullRecorder:
    """Stands in for store.RunRecorder on processes other than 0: one process writes the results."""

    run_id = -1

    def record_eval(self, *args: Any, **kwargs: Any) -> None:
        pass

    def finish(self, *args: Any, **kwargs: Any) -> None:
        pass


class Sweep:
    """Everything validated and compiled once; `run_seed` trains one seed."""

    def __init__(self, cfg: SweepConfig, workload: Workload | None = None,
                 devices: list[Any] | None = None) -> None:
        """`workload` overrides the registry lookup of cfg.workload (tests shrink full-scale
        workloads this way: same code paths, smaller batch or fewer layers). `devices` defaults to
        every device of every process (data parallel over all of them)."""
        # Validate every input before anything is written, so bad input leaves the store untouched.
        self.cfg = cfg
        self.workload: Workload = workload if workload is not None else get_workload(cfg.workload, cfg.knobs)
        self.submission = submission_loader.load(cfg.submission)
        if cfg.diagnostics_every < 0:
            raise UserError(f"--diagnostics_every must be >= 0 (0: never record), got "
                            f"{cfg.diagnostics_every}")
        self.phases = scaled_phases(tuple(self.workload.phases), cfg.budget)
        self.budget = sum(p.steps for p in self.phases)
        self.phase_hparams = validate_phase_hparams(cfg.hparams, self.submission.defaults,
                                                    self.submission.name, [p.name for p in self.phases])
        # What is recorded: one mapping when every phase has the same hparams, else the list.
        self.hparams: Any = (self.phase_hparams[0] if all(h == self.phase_hparams[0] for h in self.phase_hparams)
                             else self.phase_hparams)
        self.mesh = parallel.data_mesh(devices)
        for phase in self.phases:
            parallel.check_divisible(phase.global_batch_size,
                                     phase.micro_batch_size or self.workload.micro_batch_size,
                                     self.mesh.devices.size, f"{self.workload.name} phase {phase.name}")
        store.check_writable(cfg.results)
        self.data = self.workload.load_data(cfg.data_dir)
        self.data_fingerprint = targets.data_fingerprint(self.data)
        warning = targets.fingerprint_warning(self.workload.name, self.data_fingerprint)
        if warning:
            print(warning, file=sys.stderr)
        self._init = jax.jit(lambda rng: self.workload.init(rng)[:2])
        # Param types from an abstract trace; values from the jitted init (an eager ResNet-50 init
        # takes 12-22 s on CPU, jitted ~1 s after compilation).
        _, _, self.param_types = abstract_init(self.workload)
        params, model_state = self._init(jax.random.PRNGKey(0))
        base_ctx = SubmissionContext(self.workload.name, self.param_types, self.budget,
                                     self.phases[0].global_batch_size, self.phases)
        self.contexts = [dataclasses.replace(base_ctx, phase_index=k) for k in range(len(self.phases))]
        self.ctx = self.contexts[0]
        for hparams, ctx in zip(self.phase_hparams, self.contexts):
            check_submission(self.submission.name, self.submission.init, self.submission.update,
                             params, hparams, ctx)
        self.config_id = config_id(self.submission.name, self.hparams, self.workload.knobs, self.budget)
        self.environment = store.canonical_json({**environment.environment(),
                                                 "data_fingerprint": self.data_fingerprint})
        self.git_revision = environment.git_revision()
        self.primary = jax.process_index() == 0
        self._compile(params, model_state)

    def _compile(self, params: Any, model_state: Any) -> None:
        """Ahead-of-time compilation of each phase's train step and the eval step, then one warm-up
        execution of each; all of it is timed as compile time.

        Why the warm-up: the first execution of a compiled step pays a one-time initialisation of
        the runtime (measured on CPU, fashion_mnist_resnet: 1.55 s for the first step, 0.34 s for
        the next ones). Without it, that second would count as training time of the first seed
        of every sweep and none of the others.
        """
        start = time.perf_counter()
        rep = parallel.replicated(self.mesh)
        state = parallel.put_replicated(TrainState(params, model_state, self.submission.init(
            params, self.phase_hparams[0], self.ctx)), self.mesh)
        self.train_steps, batches = [], []
        for k, (hparams, ctx) in enumerate(zip(self.phase_hparams, self.contexts)):
            batches.append(parallel.put_batch(next(self.workload.train_batches(self.data, 0, k)), self.mesh))
            diagnostics = self.submission.diagnostics if self.cfg.diagnostics_every > 0 else None
            step = make_train_step(self.workload, self.submission.update, hparams, ctx, self.mesh,
                                   diagnostics=diagnostics)
            jitted = jax.jit(step, donate_argnums=0 if donate_state() else (), out_shardings=(rep, rep))
            self.train_steps.append(jitted.lower(state, batches[k], jax.random.PRNGKey(0),
                                                 np.int32(0)).compile())
        eval_batch = parallel.put_batch(next(self.workload.eval_batches(self.data, "validation")), self.mesh)
        self.eval_step = jax.jit(make_eval_step(self.workload), out_shardings=rep).lower(
            state.params, state.model_state, eval_batch).compile()
        # Warm-up on throwaway values; each step consumes the state the previous one returned (a
        # donated input is gone), so no second copy of the state is ever alive.
        jax.block_until_ready(self.eval_step(state.params, state.model_state, eval_batch))
        for step, batch in zip(self.train_steps, batches):
            state, _ = step(state, batch, jax.random.PRNGKey(0), np.int32(0))
        jax.block_until_ready(state)
        self.compile_seconds = time.perf_counter() - start

    def evaluate(self, state: TrainState, split: str) -> tuple[float, float]:
        """(mean loss, metric) over one split."""
        sums = [self.eval_step(state.params, state.model_state, parallel.put_batch(b, self.mesh))
                for b in self.workload.eval_batches(self.data, split)]
        total = host_sums(sums)
        count = total["count"]
        return float(total["loss"]) / count, float(total[self.workload.metric]) / count

    def _recorder(self, conn: Any, seed: int) -> store.RunRecorder | NullRecorder:
        if not self.primary:
            return NullRecorder()
        wl, cfg = self.workload, self.cfg
        return store.RunRecorder(
            conn, workload=wl.name, submission=self.submission.name,
            submission_path=self.submission.path, hparams=store.canonical_json(self.hparams),
            knobs=store.canonical_json(wl.knobs), hparams_given=store.canonical_json(cfg.hparams),
            knobs_given=store.canonical_json(cfg.knobs), config_label=cfg.config_label,
            config_id=self.config_id, seed=seed,
            metric=wl.metric, direction=wl.direction.value, target=wl.target,
            step_budget=self.budget, global_batch_size=self.phases[0].global_batch_size,
            compile_seconds=self.compile_seconds, environment=self.environment,
            git_revision=self.git_revision)

    def _start_phase(self, state: TrainState, k: int) -> TrainState:
        """At the start of phase k > 0: the submission's optional next_phase hook (on the host)."""
        if k == 0 or self.submission.next_phase is None:
            return state
        opt_state = self.submission.next_phase(state.opt_state, state.params, self.phase_hparams[k],
                                               self.contexts[k])
        return TrainState(state.params, state.model_state, parallel.put_replicated(opt_state, self.mesh))

    def run_seed(self, conn: Any, seed: int) -> RunSummary:
        wl, cfg = self.workload, self.cfg
        recorder = self._recorder(conn, seed)
        init_key, train_key = jax.random.split(jax.random.PRNGKey(seed))
        params, model_state = self._init(init_key)
        state = TrainState(params, model_state,
                           self.submission.init(params, self.phase_hparams[0], self.ctx))
        # One fresh replicated buffer per leaf: the step may donate its input state (an init may alias).
        state = parallel.put_replicated(jax.tree.map(lambda x: jnp.array(x, copy=True), state), self.mesh)
        phase_ends = np.cumsum([p.steps for p in self.phases])
        bar = tqdm(total=self.budget, desc=f"{self.submission.name} seed {seed}", unit="step",
                   leave=False, disable=not cfg.progress, file=sys.stderr, dynamic_ncols=True)
        train_seconds = eval_seconds = 0.0
        steps_to_target = seconds_to_target = best = final_train = final_valid = final_test = None
        status, step, pending, stop = "completed", 0, [], False
        every = cfg.diagnostics_every
        pending_diag: list[tuple[int, Any]] = []  # (step, device arrays): read at the next eval
        watch = DivergenceWatch()
        try:
            jax.block_until_ready(state)
            tick = time.perf_counter()
            for k, phase in enumerate(self.phases):
                state = self._start_phase(state, k)
                batches = wl.train_batches(self.data, seed, k)
                train_step = self.train_steps[k]
                for step in range(step + 1, int(phase_ends[k]) + 1):
                    batch = parallel.put_batch(next(batches), self.mesh)
                    state, metrics = train_step(state, batch, train_key, np.int32(step - 1))
                    diag = metrics.pop(DIAGNOSTICS, None)
                    if diag is not None and step % every == 0:
                        pending_diag.append((step, diag))
                    pending.append(metrics)
                    watch.add(step, metrics["finite"])
                    bar.update(1)
                    at_eval = step % wl.eval_every_steps == 0 or step == phase_ends[k]
                    diverged_at = watch.first_diverged(wait=at_eval)
                    if diverged_at is not None:
                        status, step, stop = "diverged", diverged_at, True
                        train_seconds += time.perf_counter() - tick
                        break
                    if not at_eval:
                        continue
                    jax.block_until_ready(state)
                    train_seconds += time.perf_counter() - tick
                    eval_start = time.perf_counter()
                    # One device_get for the metrics and the diagnostics since the last eval.
                    values, diag_values = jax.device_get((pending, pending_diag))
                    sums = host_sums(values)
                    pending, pending_diag = [], []
                    train_loss = sums["loss"] / sums["count"]
                    final_train = sums[wl.metric] / sums["count"]
                    valid_loss, valid = self.evaluate(state, "validation")
                    test_loss, test = self.evaluate(state, "test")
                    recorder.record_eval(step, train_seconds, train_loss=train_loss, train_metric=final_train,
                                         valid_loss=valid_loss, valid_metric=valid, test_loss=test_loss,
                                         test_metric=test, diagnostics=diagnostic_rows(diag_values))
                    final_valid, final_test = valid, test
                    if best is None or wl.direction.better(valid, best):
                        best = valid
                    if steps_to_target is None and wl.direction.reached(valid, wl.target):
                        steps_to_target, seconds_to_target = step, train_seconds
                    bar.set_postfix_str(f"valid {wl.metric} {valid:.4f}")
                    eval_seconds += time.perf_counter() - eval_start
                    if cfg.stop_at_target and steps_to_target is not None:
                        stop = True
                        break
                    tick = time.perf_counter()
                if stop:
                    break
        except BaseException as e:
            bar.close()
            recorder.finish("failed", error=f"{type(e).__name__}: {e}"[:500], steps_done=step)
            raise
        bar.close()
        recorder.finish(status, steps_done=step, steps_to_target=steps_to_target,
                        seconds_to_target=seconds_to_target, best_valid=best,
                        final_valid=final_valid, final_test=final_test,
                        final_train=final_train, train_seconds=train_seconds)
        return RunSummary(recorder.run_id, seed, status, step, steps_to_target, seconds_to_target, best,
                          final_train, train_seconds, eval_seconds)

    def summary_line(self, s: RunSummary) -> str:
        wl = self.workload
        pct = (lambda v: f"{100 * v:.2f}%") if wl.metric == "accuracy" else (lambda v: f"{v:.4f}")
        reached = (f"target {pct(wl.target)} reached at step {s.steps_to_target} ({s.seconds_to_target:.1f} s)"
                   if s.steps_to_target is not None else f"target {pct(wl.target)} missed")
        best = pct(s.best_valid) if s.best_valid is not None else "n/a"
        train = pct(s.final_train) if s.final_train is not None else "n/a"
        return (f"[run {s.run_id}] {wl.name} {self.submission.name} seed {s.seed}: {s.status} at step "
                f"{s.steps_done}/{self.budget}; best valid {wl.metric} {best}; {reached}; final train "
                f"{train}; {s.train_seconds:.1f} s training + {s.eval_seconds:.1f} s eval")


def run_sweep(cfg: SweepConfig) -> list[RunSummary]:
    """Validate, compile once, then train every seed; a diverged seed does not stop the sweep."""
    sweep = Sweep(cfg)
    phases = " then ".join(f"{p.steps} at batch {p.global_batch_size}"
                           + (f" x seq {p.seq_len}" if p.seq_len else "") for p in sweep.phases)
    print(f"{sweep.workload.name} x {sweep.submission.name} [{sweep.config_id}]: {len(cfg.seeds)} seed(s), "
          f"budget {sweep.budget} steps ({phases}) on {sweep.mesh.devices.size} device(s), "
          f"compiled in {sweep.compile_seconds:.1f} s", flush=True)
    conn = store.connect(cfg.results)
    try:
        summaries = []
        for seed in cfg.seeds:
            summary = sweep.run_seed(conn, seed)
            if sweep.primary:
                print(sweep.summary_line(summary), flush=True)
            summaries.append(summary)
        return summaries
    finally:
        conn.close()
