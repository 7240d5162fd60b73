"""The run plan: everything about a run that is decided before it trains, resolved once.

`build` takes what a user asks for (a workload, a batch size, a submission, a named config,
hyperparameters, knobs, a budget, the devices) and returns a `RunPlan`: the workload instance (at
another global batch: its variant, harness/batch_scaling.py), the loaded submission, the phases
(scaled to the budget) each with its validated hyperparameters (learning rates scaled by a declared
rule, harness/lr_scaling.py) and its `SubmissionContext`, what the results record (hyperparameters,
the config label, the row's config id), and the one factory of a phase's training step. `harness
run` (harness/runner.py), `set_target`, `memory`, `bench`, `bench_parallel` and the tests all train
or compile from a plan.

Every input is validated here, before any data is read or anything is written: an unknown
workload, submission, config, hyperparameter or knob, a budget below the number of phases, a
global batch that does not split over the devices, a value the submission's check_hparams refuses,
or a submission whose init/update return the wrong trees or branch on traced hparams (checked on
shapes alone, harness/submission_checks.py) is a UserError.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from harness import audit, batch_scaling, configs, lr_scaling, parallel, store
from harness import submission_loader as loader
from harness.errors import UserError
from harness.formatting import describe_phases
from harness.hparams import split_static, validate_phase_hparams
from harness.spec import Batch, ParamTypes, Phase, SubmissionContext, Workload, total_steps
from harness.submission_checks import check_submission
from harness.training import TrainState, abstract_init, donate_state, make_train_step, traced_dtype

Hparams = Mapping[str, Any] | Sequence[Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class PhasePlan:
    """One phase as it will run: its steps and batches, its hyperparameters, its context."""

    phase: Phase
    hparams: Mapping[str, Any]  # validated: every key of DEFAULT_HPARAMS, the default's type
    ctx: SubmissionContext
    static: Mapping[str, Any]  # the hparams compiled into the step (harness/hparams.split_static)
    traced: Mapping[str, float]  # the numeric hparams passed to the compiled step as arguments
    #: What the results record: `hparams` with the learning rates as given and the declared rule
    #: (harness/lr_scaling.py); without a rule, `hparams` itself.
    recorded: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RunPlan:
    workload: Workload
    submission: loader.Submission
    phases: tuple[PhasePlan, ...]
    mesh: Mesh
    param_types: ParamTypes
    abstract_params: Any  # shapes and dtypes (jax.ShapeDtypeStruct) of params and model state
    abstract_model_state: Any
    hparams_given: Hparams  # the named config's hparams with --hparams on top, as given
    knobs_given: Mapping[str, Any]
    config: configs.NamedConfig | None = None
    config_label: str | None = None  # the config's name and what was set on top (validated)
    hparams_set: Hparams = dataclasses.field(default_factory=dict)  # what was set on top of the config
    knobs_set: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # likewise for knobs
    #: The first phase's global batch when the workload runs as a batch-size variant
    #: (harness/batch_scaling.py); None: the workload's own batch size.
    batch_size: int | None = None

    def with_hparams(self, extra: Hparams, check_program: bool = True) -> RunPlan:
        """This plan with `extra` set on top of its hyperparameters (a tuning trial's point; for a
        plan being built: the user's --hparams): validated against DEFAULT_HPARAMS and by the
        submission's check_hparams on concrete values. With `check_program`, init and update are
        traced on shapes (harness/submission_checks.py) when the program may differ from this
        plan's (other static hparams); the workload, submission, config, knobs and phases stay.
        A declared learning-rate rule (harness/lr_scaling.py) scales each phase's rates to its
        global batch; the results record them as given."""
        sub, named = self.submission, self.config
        hparams_set = configs.merge_hparams(self.hparams_set, extra) if self.hparams_set else extra
        given = configs.merge_hparams(named.hparams, hparams_set) if named is not None else hparams_set
        phases = tuple(p.phase for p in self.phases)
        effective, recorded = phase_hparams(given, sub, phases)
        plans = tuple(PhasePlan(old.phase, hp, old.ctx, *split_static(hp, sub.defaults, sub.static_hparams), rec)
                      for old, hp, rec in zip(self.phases, effective, recorded))
        with loader.guard(sub):  # the submission's code runs here (harness/audit.py)
            for new, old in zip(plans, self.phases):
                check_hparams(sub, new.hparams, new.ctx)
                if check_program and (new.static != old.static or not old.hparams):
                    check_submission(sub.name, sub.init, sub.update, self.abstract_params, new.hparams,
                                     new.ctx, traced=new.traced)
        label = (configs.label(named.name, _given_validated(hparams_set, recorded), self.knobs_set)
                 if named is not None else None)
        return dataclasses.replace(self, phases=plans, hparams_given=given, config_label=label,
                                   hparams_set=hparams_set)

    # --- what the results record ------------------------------------------------------------
    @property
    def budget(self) -> int:
        return total_steps(tuple(p.phase for p in self.phases))

    @property
    def hparams(self) -> Hparams:
        """The recorded hyperparameters (PhasePlan.recorded): one mapping when every phase has the
        same, else the list."""
        first = self.phases[0].recorded
        if all(p.recorded == first for p in self.phases):
            return dict(first)
        return [dict(p.recorded) for p in self.phases]

    @property
    def source_hash(self) -> str:
        """Hash of the submission's code as it was loaded (submission_loader.source_hash)."""
        return self.submission.source_hash

    @property
    def config_id(self) -> str:
        """Stable short id of the leaderboard row: a hash of (submission, its code, hparams, knobs,
        budget, and a batch-size variant's global batch) (never Python's salted hash()); runs of an
        edited submission form another row, and so do runs at another batch size. The batch enters
        only for a variant: rows at the workload's own batch keep the ids they had before
        --batch_size existed."""
        key: dict[str, Any] = {"submission": self.submission.name, "source": self.source_hash,
                               "hparams": self.hparams, "knobs": self.workload.knobs, "budget": self.budget}
        if self.batch_size is not None:
            key["global_batch_size"] = self.batch_size
        return hashlib.sha256(store.canonical_json(key).encode()).hexdigest()[:10]

    @property
    def device_count(self) -> int:
        return int(self.mesh.devices.size)

    @property
    def compile_key(self) -> str:
        """What the compiled training steps depend on besides the workload and the mesh: plans with
        the same key (e.g. the trials of a tuning study) run the same compiled programs with other
        traced hparams."""
        return store.canonical_json({
            "submission": self.submission.path,
            "phases": [dataclasses.asdict(p.phase) for p in self.phases],
            "static": [p.static for p in self.phases], "traced": [sorted(p.traced) for p in self.phases]})

    def traced_arguments(self, k: int) -> dict[str, jax.Array]:
        """Phase k's traced hparams as the scalars the compiled step takes."""
        return {name: jnp.asarray(v, traced_dtype()) for name, v in self.phases[k].traced.items()}

    def describe(self) -> str:
        """One line: workload, submission, row id, config, budget and phases, devices."""
        config = f" config={self.config_label}" if self.config_label else ""
        return (f"{self.workload.name} x {self.submission.name} [{self.config_id}]{config}: budget "
                f"{self.budget} steps ({describe_phases([p.phase for p in self.phases])}) on "
                f"{self.device_count} device(s)")

    # --- shapes -----------------------------------------------------------------------------
    def per_device_batch(self, k: int, devices: int | None = None) -> int:
        """Examples per device of phase k's global batch on `devices` devices (default: the plan's
        mesh); UserError unless it splits into whole micro-batches on every device."""
        phase = self.phases[k].phase
        n = self.device_count if devices is None else devices
        parallel.check_divisible(phase.global_batch_size, phase.micro_batch_size, n,
                                 f"{self.workload.name} phase {phase.name}")
        return phase.global_batch_size // n

    def abstract_batch(self, k: int, batch_size: int | None = None) -> Batch:
        """Phase k's training batch (default: the global batch) as shapes, sharded over the mesh."""
        size = self.phases[k].phase.global_batch_size if batch_size is None else batch_size
        sharding = parallel.batch_sharded(self.mesh)
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding),
                            self.workload.abstract_batch(size, k))

    def abstract_state(self) -> TrainState:
        """The train state as shapes, replicated over the mesh (the optimizer state of phase 0's
        init: a later phase's next_phase returns a state of the same structure)."""
        first = self.phases[0]
        with loader.guard(self.submission):
            opt_state = jax.eval_shape(lambda p: self.submission.init(p, first.hparams, first.ctx),
                                       self.abstract_params)
        rep = parallel.replicated(self.mesh)
        return jax.tree.map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=rep, weak_type=s.weak_type),
            TrainState(self.abstract_params, self.abstract_model_state, opt_state))

    # --- the training step ------------------------------------------------------------------
    def train_step(self, k: int, *, diagnostics: bool = False, unroll: int | None = None
                   ) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
        """Phase k's step(state, batch, rng, step) -> (state, metrics) (harness/training.py),
        with the submission's diagnostics in the metrics when asked for and defined."""
        p = self.phases[k]
        return make_train_step(self.workload, self.submission.update, p.static, p.ctx, self.mesh,
                               unroll=unroll,
                               diagnostics=self.submission.diagnostics if diagnostics else None)

    def jit_train_step(self, k: int, *, diagnostics: bool = False, unroll: int | None = None,
                       donate: bool | None = None) -> Any:
        """train_step jitted: the state replicated in and out, donated where that pays
        (harness/training.donate_state, unless `donate` says)."""
        rep = parallel.replicated(self.mesh)
        donate = donate_state() if donate is None else donate
        return jax.jit(self.train_step(k, diagnostics=diagnostics, unroll=unroll),
                       donate_argnums=0 if donate else (), out_shardings=(rep, rep))

    def compile_train_step(self, k: int, *, diagnostics: bool = False, unroll: int | None = None,
                           donate: bool | None = None, batch_size: int | None = None) -> Any:
        """jit_train_step compiled ahead of time from shapes alone (no data, nothing allocated)."""
        rng = jax.eval_shape(lambda: jax.random.PRNGKey(0))
        traced = {name: jax.ShapeDtypeStruct((), traced_dtype()) for name in self.phases[k].traced}
        with loader.guard(self.submission):  # tracing runs the submission's update
            return self.jit_train_step(k, diagnostics=diagnostics, unroll=unroll, donate=donate).lower(
                self.abstract_state(), self.abstract_batch(k, batch_size), rng,
                jax.ShapeDtypeStruct((), np.int32), traced).compile()


def scaled_phases(phases: tuple[Phase, ...], budget: int | None) -> tuple[Phase, ...]:
    """The workload's phases, or with --budget: the phases scaled to `budget` steps in total.

    One phase gets exactly `budget` steps. Several keep their proportions (each at least one step,
    the last takes the rounding remainder), so a short run still visits every phase.
    """
    if budget is None:
        return phases
    if not 1 <= budget <= np.iinfo(np.int32).max:  # the step counter is an int32 (the submission's `update`)
        raise UserError(f"--budget must be a positive number of steps, at most {np.iinfo(np.int32).max} "
                        f"(2^31 - 1: steps are counted in int32), got {budget}")
    if budget < len(phases):
        raise UserError(f"--budget={budget} is smaller than the number of phases ({len(phases)}); "
                        "give at least one step per phase")
    total = total_steps(phases)
    steps: list[int] = []
    for i, p in enumerate(phases[:-1]):
        later = len(phases) - i - 1  # phases after this one, each needs a step
        steps.append(min(max(1, round(p.steps * budget / total)), budget - sum(steps) - later))
    steps.append(budget - sum(steps))
    return tuple(dataclasses.replace(p, steps=n) for p, n in zip(phases, steps))


def check_hparams(sub: loader.Submission, hparams: Mapping[str, Any], ctx: SubmissionContext) -> None:
    """The submission's own check of the values (harness/spec.py), on concrete hparams."""
    if sub.check_hparams is None:
        return
    try:
        sub.check_hparams(hparams, ctx)
    except UserError:
        raise
    except SystemExit as e:
        raise audit.exit_error(sub.name, "in check_hparams(hparams, ctx)", e) from None
    except Exception as e:  # user code: any other failure is reported as one line too
        raise UserError(f"submission {sub.name}: check_hparams(hparams, ctx) raised "
                        f"{type(e).__name__}: {e}") from None


def phase_hparams(given: Hparams, sub: loader.Submission, phases: Sequence[Phase]
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per phase: the hparams the submission gets, the hparams the results record) of `given`
    (one mapping for every phase, or one per phase): validated against the submission's
    DEFAULT_HPARAMS (harness/hparams.py), learning rates scaled to each phase's global batch by a
    declared rule (harness/lr_scaling.py; recorded as given, with the rule)."""
    declared, rules = lr_scaling.split(given, len(phases))
    validated = validate_phase_hparams(declared, sub.defaults, sub.name, [p.name for p in phases])
    effective = [lr_scaling.scaled(hp, rule, phase.global_batch_size, sub.name)
                 for hp, rule, phase in zip(validated, rules, phases)]
    return effective, [lr_scaling.recorded(hp, rule) for hp, rule in zip(validated, rules)]


def _given_validated(given: Hparams, validated: list[dict[str, Any]]) -> Hparams:
    """The keys the user set, with their validated values (for the config label; a rule key set
    to "none" is not recorded and shows as given)."""
    if isinstance(given, Mapping):
        return {k: validated[0].get(k, v) for k, v in given.items()}
    return [{k: validated[i].get(k, v) for k, v in h.items()} for i, h in enumerate(given)]


def build(workload: str | Workload | None, submission: str | loader.Submission, *,
          config: str | None = None, hparams: Hparams | None = None,
          knobs: Mapping[str, Any] | None = None, budget: int | None = None,
          batch_size: int | None = None, devices: Sequence[Any] | None = None) -> RunPlan:
    """The plan of running `submission` on `workload`.

    `workload`: a registered name, or an instance (tests shrink full-scale workloads this way:
    same code paths, smaller sizes; `knobs` must then be empty), or None with a `config` naming it.
    `submission`: a built-in name, a path, ``M#D``, or a loaded Submission. `config`: a named
    configuration of the submission (harness/configs.py); `hparams` and `knobs` override its keys.
    `budget`: steps instead of the workload's (phases scaled). `batch_size`: the workload's
    variant at this first-phase global batch (harness/batch_scaling.py; None: the workload's
    own), before `budget` applies. `devices`: default every device of every process (data
    parallel over all of them).
    """
    sub = submission if isinstance(submission, loader.Submission) else loader.load(submission)
    hparams = {} if hparams is None else hparams
    knobs = dict(knobs or {})
    named = configs.load_config(sub, config) if config else None
    if named is not None:
        name = workload if isinstance(workload, str) or workload is None else workload.name
        if name is not None and name != named.workload:
            raise UserError(f"config {named.name} is for workload {named.workload}, not {name}; "
                            f"drop --workload or pass --workload={named.workload}")
        knobs_given = {**named.knobs, **knobs}
        workload = named.workload if workload is None else workload
    else:
        knobs_given = knobs
    if workload is None:
        raise UserError("--workload is required (or --config naming one)")
    if isinstance(workload, str):
        from workloads import get_workload

        wl = get_workload(workload, knobs_given)
    else:
        if knobs_given:
            raise ValueError("knobs cannot be applied to a workload instance; build it with them")
        wl = workload
    default_batch = wl.phases[0].global_batch_size
    wl = batch_scaling.resized(wl, batch_size)
    variant = batch_size if batch_size is not None and batch_size != default_batch else None
    phases = scaled_phases(tuple(wl.phases), budget)
    mesh = parallel.data_mesh(list(devices) if devices is not None else None)
    params, model_state, param_types = abstract_init(wl)
    empty = RunPlan(wl, sub, tuple(PhasePlan(phase, {}, SubmissionContext(wl.name, param_types, phases, k),
                                             {}, {}) for k, phase in enumerate(phases)),
                    mesh, param_types, params, model_state, {}, knobs_given, named, None, {}, knobs,
                    batch_size=variant)
    plan = empty.with_hparams(hparams, check_program=True)
    for k in range(len(plan.phases)):
        plan.per_device_batch(k)
    return plan
