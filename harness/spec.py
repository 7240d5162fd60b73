"""The contract between workloads, submissions and the harness (one file, like AlgoPerf's spec.py).

Workloads and submissions import only this module (plus their own libraries); the harness imports
workloads and loads submissions by path.

Submission protocol (optax semantics, pure and jittable)::

    DEFAULT_HPARAMS: dict[str, float | int | bool | str]
    def init(params, hparams, ctx: SubmissionContext) -> state
    def update(grads, state, params, hparams, ctx: SubmissionContext) -> (updates, state)

The harness applies ``params = params + updates``. ``hparams`` is a plain mapping whose keys and
value types are those of ``DEFAULT_HPARAMS``; ``ctx`` is static information about the workload. A
submission never sees data, the clock or the target.

Learning-rate scaling with the batch size is the harness's (harness/lr_scaling.py): the hparam
names ``lr_scaling`` and ``lr_reference_batch_size`` are reserved for it, and a declared rule
reaches ``update`` as learning rates already scaled to ``ctx.global_batch_size``.

Static and traced hyperparameters. Inside the compiled training step the *numeric* hyperparameters
(those whose default is a float) are traced arguments, so that trials of a tuning study with other
learning rates, decays, warmups or betas share one compiled program; ``update`` receives them as
JAX scalars and must not branch on them in Python (no ``if``, ``float()``, ``or`` on their values:
use jnp operations). Booleans, strings and integers are static Python values, as are the floats a
submission names in::

    STATIC_HPARAMS: frozenset[str]   # optional: floats whose value changes the program or the state

(e.g. ``grad_clip_norm``, where 0 means "no clipping transform"). The optimizer state's structure
may depend only on static hyperparameters. Checks of the values belong in::

    def check_hparams(hparams, ctx) -> None   # optional: raise UserError naming a bad value

which the harness calls with concrete values before anything runs (``init`` and ``next_phase`` too
run on the host with concrete values).

Multi-phase workloads (BERT: sequence length 128, then 512) compile one step per phase; ``ctx``
then names the current phase (``ctx.phase_index``, ``ctx.phase``, ``ctx.phase_start``) and
``hparams`` may differ per phase (a list of mappings given to the harness, Nado et al. Table 8).
The optimizer state carries over from one phase to the next unless the submission defines::

    def next_phase(state, params, hparams, ctx) -> state   # called on the host at each phase start

(for example ``return init(params, hparams, ctx)`` to restart moments and schedule, as the official
BERT code does when phase 2 starts from the phase-1 checkpoint).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import jax
from flax.core import meta

from harness.direction import Direction
from harness.errors import DataError, UserError

__all__ = [  # the contract; Direction, UserError and DataError live in JAX-free modules
    "Batch", "BatchScaling", "BatchVariant", "DataError", "Direction", "EvalModelState", "Hparams", "Knob",
    "ModelState", "ParamType", "ParamTypes", "Params", "Phase", "SubmissionContext", "TypedParam", "UserError",
    "WEIGHT_LIKE", "Workload", "batch_scaling_rule", "eval_model_state_hook", "is_weight_like",
    "split_param_types", "total_steps", "typed", "validate_knobs", "weight_mask",
]

Params = Any  # a pytree of arrays
ModelState = Any  # e.g. batch-norm running statistics
Batch = Mapping[str, Any]
Hparams = Mapping[str, Any]
ParamTypes = Any  # a pytree with the structure of Params and ParamType leaves


class ParamType(enum.Enum):
    """The role of a parameter, declared by the model that creates it (never guessed from names)."""

    WEIGHT = "weight"  # dense kernel
    CONV_WEIGHT = "conv_weight"
    BIAS = "bias"
    BN_SCALE = "bn_scale"
    BN_BIAS = "bn_bias"
    LN_SCALE = "ln_scale"
    LN_BIAS = "ln_bias"
    EMBEDDING = "embedding"
    ATTENTION_QKV = "attention_qkv"
    ATTENTION_OUT = "attention_out"


#: Parameters that L2 / weight decay and layer-wise trust ratios apply to in the reference pipelines.
WEIGHT_LIKE = frozenset({ParamType.WEIGHT, ParamType.CONV_WEIGHT, ParamType.EMBEDDING,
                         ParamType.ATTENTION_QKV, ParamType.ATTENTION_OUT})


def is_weight_like(ptype: ParamType) -> bool:
    return ptype in WEIGHT_LIKE


def weight_mask(param_types: ParamTypes) -> Any:
    """A boolean pytree: True where the parameter is weight-like (decayed, trust-ratio scaled)."""
    return jax.tree.map(is_weight_like, param_types, is_leaf=lambda x: isinstance(x, ParamType))


# --- parameter-type declaration ---------------------------------------------------------------


@meta.struct.dataclass
class TypedParam(meta.AxisMetadata):
    """A Flax metadata box carrying the ParamType of the parameter it wraps."""

    value: Any
    param_type: ParamType = meta.struct.field(pytree_node=False)

    def unbox(self) -> Any:
        return self.value

    def replace_boxed(self, val: Any) -> TypedParam:
        return dataclasses.replace(self, value=val)

    def add_axis(self, index: int, params: dict[Any, Any]) -> TypedParam:
        return self

    def remove_axis(self, index: int, params: dict[Any, Any]) -> TypedParam:
        return self


def typed(init_fn: Callable[..., Any], param_type: ParamType) -> Callable[..., TypedParam]:
    """Wrap a Flax initializer so that the parameter it creates declares its type."""

    def wrapped(*args: Any, **kwargs: Any) -> TypedParam:
        return TypedParam(init_fn(*args, **kwargs), param_type)

    return wrapped


def split_param_types(boxed: Params) -> tuple[Params, ParamTypes]:
    """(params, param_types) from a tree of TypedParam boxes; every leaf must be boxed."""
    is_box = lambda x: isinstance(x, TypedParam)  # noqa: E731
    untyped = [jax.tree_util.keystr(path) for path, leaf in
               jax.tree_util.tree_flatten_with_path(boxed, is_leaf=is_box)[0] if not is_box(leaf)]
    if untyped:
        raise TypeError(f"parameters without a declared ParamType: {untyped}; create them with "
                        "spec.typed(initializer, ParamType.X)")
    params = jax.tree.map(lambda b: b.value, boxed, is_leaf=is_box)
    types = jax.tree.map(lambda b: b.param_type, boxed, is_leaf=is_box)
    return params, types


# --- workload description ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Knob:
    """A tunable input-pipeline / model knob of a workload with its allowed range (inclusive)."""

    name: str
    default: float
    low: float
    high: float
    doc: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Phase:
    """One training phase (BERT has two: seq 128 then 512). Single-phase workloads have one.

    ``micro_batch_size`` is the gradient-accumulation unit (and the ghost batch-norm span): the
    global batch is computed as global_batch_size / micro_batch_size micro-batches.
    """

    name: str
    steps: int
    global_batch_size: int
    micro_batch_size: int
    seq_len: int | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.micro_batch_size < 1 or self.global_batch_size % self.micro_batch_size:
            raise ValueError(f"phase {self.name}: needs steps >= 1 and a global batch "
                             f"({self.global_batch_size}) that is a multiple of the micro-batch "
                             f"({self.micro_batch_size}); got {self}")


def total_steps(phases: tuple[Phase, ...]) -> int:
    """The step budget of a run made of `phases`."""
    return sum(p.steps for p in phases)


@dataclasses.dataclass(frozen=True)
class BatchScaling:
    """How a workload's phases follow its global batch size (``--batch_size``; the arithmetic is
    harness/batch_scaling.py). A workload declares it as ``batch_scaling`` (optional: without it,
    the default ``BatchScaling()``).

    Fixed epochs: phase k processes ``examples[k]`` training examples (epochs x train examples) at
    every batch size, so at batch B_k it runs ceil(examples[k] / B_k) steps (You et al. 2019 Tables
    4-5, "fixed #epochs"; 90 epochs of ImageNet at 16K: ceil(90 x 1,281,167 / 16,384) = 7,038).
    ``examples`` None: what the workload's own phases process, steps x global batch (the default
    batch then gives exactly the workload's budget). ``listed_steps``: batch size (of the first
    phase) -> steps per phase that a paper lists; they win over the rule at those batch sizes.
    ``max_batch_size``: the largest global batch the training data allows (its size), if bounded.
    """

    examples: tuple[int, ...] | None = None
    listed_steps: Mapping[int, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    max_batch_size: int | None = None
    source: str = ""  # where the numbers come from


@dataclasses.dataclass(frozen=True)
class BatchVariant:
    """A workload at another global batch size, as its BatchScaling gives it: the argument of the
    optional ``Workload.with_batch`` hook. Cadences in steps keep their spacing in examples."""

    batch_size: int  # the first phase's global batch
    phases: tuple[Phase, ...]  # other global batches and steps; micro-batches and seq_len as they were
    eval_every_steps: int
    checkpoint_every: int
    target: float | None = None  # the variant's own target (reference_results/targets.json); None: keep


@dataclasses.dataclass(frozen=True)
class SubmissionContext:
    """Static workload information handed to submissions (closed over by the jitted step, never traced).

    The step budget and the global batch size are derived from the phases, so they cannot disagree.
    """

    workload: str
    param_types: ParamTypes
    phases: tuple[Phase, ...]
    phase_index: int = 0  # the phase the step being compiled belongs to

    @property
    def step_budget(self) -> int:
        """Steps of the whole run (every phase)."""
        return total_steps(self.phases)

    @property
    def global_batch_size(self) -> int:
        """The global batch size of the current phase."""
        return self.phase.global_batch_size

    @property
    def phase(self) -> Phase:
        return self.phases[self.phase_index]

    @property
    def phase_start(self) -> int:
        """Global step at which the current phase starts."""
        return self.phase_boundaries[self.phase_index]

    @property
    def phase_boundaries(self) -> tuple[int, ...]:
        """Steps at which each phase starts (the first is 0)."""
        starts, total = [], 0
        for phase in self.phases:
            starts.append(total)
            total += phase.steps
        return tuple(starts)


class Workload(Protocol):
    """What the harness needs from a workload. Implementations configure themselves from knobs.

    The phases say everything about steps and batches: the step budget is the sum of their steps,
    and each has its global batch size and micro-batch size.

    Optional hook (looked up with `eval_model_state_hook`; a workload without it is evaluated with
    the training model state)::

        def eval_model_state(self, params, model_state, data) -> ModelState

    The model state that every split of one evaluation uses, computed from the current params (and
    the training model state) just before the evaluation: e.g. batch-norm statistics recomputed on
    training batches ("precise BN", workloads/image_classification.py) instead of the running
    averages. It may read training data, from a fixed stream of its own, never the run's (the run's
    batches and their order stay as they are); it must be deterministic (the same params give the
    same state at every call) and return a state of the training state's structure. The harness
    calls it once per evaluation, on the host, in evaluation time (harness/evaluation.py).

    Batch size (optional, `--batch_size`): ``batch_scaling: BatchScaling`` declares how the phases
    follow the global batch (default: fixed epochs), and::

        def with_batch(self, variant: BatchVariant) -> Workload

    returns a copy of the workload that runs ``variant.phases`` (its training batches of their
    global batch sizes) with the variant's cadences and, when given, its target; everything else
    (model, knobs, evaluation, precise-BN statistics) as the workload's own. A workload without
    it does not take --batch_size.
    """

    name: str
    metric: str  # e.g. "accuracy"
    direction: Direction
    target: float  # validation target of `metric`
    eval_every_steps: int
    #: Default steps between checkpoints (harness/checkpoints.py; --checkpoint_every overrides it):
    #: full-scale workloads (hours on a pod) checkpoint at every evaluation; 0: none.
    checkpoint_every: int
    KNOBS: tuple[Knob, ...]  # the knobs it accepts, with ranges (validate_knobs)
    knobs: Mapping[str, float]  # the values this instance was built with

    @property
    def phases(self) -> tuple[Phase, ...]: ...

    def load_data(self, data_dir: str | None) -> Any:
        """Load (and validate) the dataset; raise DataError naming the fix when missing or corrupt."""

    def init(self, rng: jax.Array) -> tuple[Params, ModelState, ParamTypes]: ...

    def abstract_batch(self, batch_size: int, phase: int = 0) -> Batch:
        """Shapes and dtypes (jax.ShapeDtypeStruct) of a training batch of `batch_size` examples
        of phase `phase`: what the harness compiles the training step for, without data."""

    def train_batches(self, data: Any, seed: int, phase: int = 0, start: int = 0) -> Iterator[Batch]:
        """Endless iterator of training batches of phase `phase` (numpy or jax arrays), from the
        `start`-th batch of the phase on (a run resumed from a checkpoint): the same batches, in the
        same order, as the iterator from 0 after `start` batches.

        Each yields this process's share of the global batch: global_batch_size // process_count
        examples (all of it on one host), the order a function of (seed, process_index) only.
        """

    def eval_batches(self, data: Any, split: str) -> Iterator[Batch]:
        """One pass over this process's share of an evaluation split ('validation' or 'test');
        every batch has the same shape, padded examples have mask 0."""

    def train_loss(self, params: Params, model_state: ModelState, batch: Batch, rng: jax.Array
                   ) -> tuple[jax.Array, tuple[ModelState, dict[str, jax.Array]]]:
        """(mean loss of the micro-batch, (new model state, metric sums incl. 'count'))."""

    def eval_sums(self, params: Params, model_state: ModelState, batch: Batch) -> dict[str, jax.Array]:
        """Sums of 'loss' and the metric over the batch's unmasked examples, and their 'count'."""


class EvalModelState(Protocol):
    """The optional `Workload.eval_model_state` hook (see the Workload protocol)."""

    def __call__(self, params: Params, model_state: ModelState, data: Any) -> ModelState: ...


def eval_model_state_hook(workload: Workload) -> EvalModelState | None:
    """The workload's `eval_model_state` hook, None when it defines none."""
    hook: EvalModelState | None = getattr(workload, "eval_model_state", None)
    return hook


def batch_scaling_rule(workload: Workload) -> BatchScaling:
    """The workload's declared BatchScaling, the default (fixed epochs) when it declares none."""
    declared: BatchScaling = getattr(workload, "batch_scaling", BatchScaling())
    return declared


def validate_knobs(declared: tuple[Knob, ...], given: Mapping[str, Any], workload: str
                   ) -> dict[str, float]:
    """Merge `given` into the declared defaults, with one-line errors for unknown or out-of-range."""
    by_name = {k.name: k for k in declared}
    values = {k.name: float(k.default) for k in declared}
    for name, value in given.items():
        if name not in by_name:
            raise UserError(f"unknown knob {name!r} for workload {workload}; known knobs: "
                            f"{', '.join(sorted(by_name)) or 'none'}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"knob {name!r} must be a number, got {value!r}")
        knob = by_name[name]
        if not knob.low <= value <= knob.high:
            raise UserError(f"knob {name!r}={value} is outside its allowed range "
                            f"[{knob.low}, {knob.high}] for workload {workload}")
        values[name] = float(value)
    return values
