"""Shared machinery of the image-classification workloads: loss with label smoothing, eval sums,
precise batch-norm statistics for evaluation (`ImageClassificationWorkload`), and device-resident
data with deterministic per-epoch shuffling (`DeviceResidentImageWorkload`, for datasets that fit in
device memory: Fashion-MNIST; ImageNet reads through tf.data instead)."""

from __future__ import annotations

import abc
import copy
import dataclasses
import functools
import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from harness.spec import (
    Batch,
    BatchVariant,
    Direction,
    Knob,
    ModelState,
    Params,
    ParamTypes,
    Phase,
    UserError,
    split_param_types,
    validate_knobs,
)
from workloads.data.common import host_share, pad_batch

#: The seed of the training-data stream that precise-BN statistics are computed on (the first
#: `precise_bn_batches` batches of `train_batches(data, PRECISE_BN_SEED)`): 2^31, a seed no run can
#: have (run seeds are in [0, 2^31), harness/cli.py). The statistics batches are thus the same at
#: every evaluation of every run, and no run's own stream is read or advanced.
PRECISE_BN_SEED = 2 ** 31
#: The knob that turns precise BN on (declared by the workloads with batch norm that offer it).
PRECISE_BN_KNOB = "precise_bn_batches"


@dataclasses.dataclass(frozen=True)
class DeviceSplits:
    """Images and labels of each split, resident on the default device."""

    train_x: jax.Array
    train_y: jax.Array
    eval: Mapping[str, tuple[jax.Array, jax.Array]]  # split name -> (images, labels)


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array, label_smoothing: float) -> jax.Array:
    """Per-example cross-entropy against labels smoothed as in MLPerf: (1-τ)·onehot + τ/K."""
    onehot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    if label_smoothing:
        onehot = optax.smooth_labels(onehot, label_smoothing)
    return optax.softmax_cross_entropy(logits, onehot)


def micro_batch_statistics(stats_model: nn.Module, params: Params, model_state: ModelState,
                           x: jax.Array) -> ModelState:
    """Every batch-norm layer's statistics (mean, biased variance) of the micro-batch `x` under
    `params`: the model state after one train-mode pass of `stats_model`, the model built with
    running-average momentum 0 (Flax's update new = ρ·old + (1-ρ)·batch statistic is then the batch
    statistic itself). Each layer's input is normalised with the micro-batch's own statistics, as
    in training (ghost BN over the micro-batch)."""
    apply: Any = stats_model.apply  # (logits, new state) with `mutable`
    _, new_state = apply({"params": params, **model_state}, x, train=True, mutable=list(model_state))
    return new_state


def precise_bn_statistics(stats_model: nn.Module, params: Params, model_state: ModelState, xs: jax.Array,
                          micro_batch_size: int) -> ModelState:
    """Precise BN (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm", Sec. 3; pycls's
    compute_precise_bn_stats): batch-norm statistics recomputed with the current `params` on the K
    training batches `xs` (K, G, ...), instead of running averages of statistics that earlier
    params produced.

    Each batch is cut into micro-batches of `micro_batch_size` (the ghost-BN span of training) and
    the result is, per layer, the mean over all K·G/micro_batch_size micro-batches of the
    micro-batch mean and of the micro-batch (biased) variance: the quantity the running averages
    estimate (harness/training.py averages the micro-batches' updates of a step the same way), at
    the current params, from more micro-batches and without their lag. (The population variance
    of all K·G examples would add the variance of the micro-batch means: measured on
    fashion_mnist_resnet, it changed validation accuracy by at most 0.15 points,
    docs/precise_bn/README.md.)
    """

    def batch_mean(x: jax.Array) -> ModelState:
        micro = x.reshape(x.shape[0] // micro_batch_size, micro_batch_size, *x.shape[1:])
        stats = jax.vmap(lambda mb: micro_batch_statistics(stats_model, params, model_state, mb))(micro)
        return jax.tree.map(lambda s: s.mean(0), stats)

    return jax.tree.map(lambda s: s.mean(0), jax.lax.map(batch_mean, xs))


class ImageClassificationWorkload(abc.ABC):
    """Base class: subclasses set the class attributes and build the model from `self.knobs`."""

    name: str
    metric = "accuracy"
    direction = Direction.MAXIMIZE
    target: float
    step_budget: int
    global_batch_size: int
    micro_batch_size: int
    eval_every_steps: int
    checkpoint_every: int = 0  # minutes on a CPU: none by default (spec.Workload.checkpoint_every)
    eval_batch_size: int = 500
    input_shape: tuple[int, ...]
    KNOBS: tuple[Knob, ...] = ()
    #: A batch-size variant's (with_batch): the workload it was made from, whose training stream
    #: precise BN reads; None: this workload's own.
    statistics_source: ImageClassificationWorkload | None = None

    def __init__(self, knobs: Mapping[str, Any] | None = None) -> None:
        self.knobs = validate_knobs(self.KNOBS, knobs or {}, self.name)
        if not float(self.knobs.get(PRECISE_BN_KNOB, 0)).is_integer():
            raise UserError(f"knob {PRECISE_BN_KNOB!r} counts training batches: give a whole number, "
                            f"got {self.knobs[PRECISE_BN_KNOB]}")
        self.model = self.build_model()

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """The Flax model, built from `self.knobs`."""

    @property
    def label_smoothing(self) -> float:
        return self.knobs.get("label_smoothing", 0.0)

    @property
    def phases(self) -> tuple[Phase, ...]:
        return (Phase(name="train", steps=self.step_budget, global_batch_size=self.global_batch_size,
                      micro_batch_size=self.micro_batch_size),)

    def with_batch(self, variant: BatchVariant) -> ImageClassificationWorkload:
        """This workload at another global batch (harness/spec.py Workload.with_batch): a shallow
        copy with the variant's batch, steps, cadences and target. The model, knobs, evaluation
        and precise-BN statistics stay this workload's: the statistics are computed on the
        batches of this (the default) workload's stream (`statistics_source`), so evaluations do
        not change with the training batch size."""
        (phase,) = variant.phases
        resized = copy.copy(self)
        resized.global_batch_size, resized.step_budget = phase.global_batch_size, phase.steps
        resized.eval_every_steps, resized.checkpoint_every = variant.eval_every_steps, variant.checkpoint_every
        if variant.target is not None:
            resized.target = variant.target
        resized.statistics_source = self.statistics_source or self
        return resized

    # --- model ------------------------------------------------------------------------------
    def init(self, rng: jax.Array) -> tuple[Params, ModelState, ParamTypes]:
        variables = self.model.init(rng, jnp.zeros((1, *self.input_shape), jnp.float32), train=False)
        params, param_types = split_param_types(variables["params"])
        return params, {k: v for k, v in variables.items() if k != "params"}, param_types

    def train_loss(self, params: Params, model_state: ModelState, batch: Batch, rng: jax.Array
                   ) -> tuple[jax.Array, tuple[ModelState, dict[str, jax.Array]]]:
        del rng  # no stochastic layers
        variables = {"params": params, **model_state}
        apply: Any = self.model.apply  # returns the logits, or (logits, new state) with `mutable`
        if model_state:
            logits, new_state = apply(variables, batch["x"], train=True, mutable=list(model_state))
        else:
            logits, new_state = apply(variables, batch["x"], train=True), model_state
        losses = softmax_cross_entropy(logits, batch["y"], self.label_smoothing)
        sums = {"loss": losses.sum(), "accuracy": (logits.argmax(-1) == batch["y"]).sum(),
                "count": jnp.asarray(losses.shape[0], jnp.float32)}
        return losses.mean(), (new_state, sums)

    # --- evaluation ---------------------------------------------------------------------------
    @property
    def precise_bn_batches(self) -> int:
        """K of precise BN: training batches the evaluation's BN statistics are computed on (0:
        the running averages; knob `precise_bn_batches` where the workload declares it)."""
        return int(self.knobs.get(PRECISE_BN_KNOB, 0))

    def eval_model_state(self, params: Params, model_state: ModelState, data: Any) -> ModelState:
        """The model state evaluations use (the optional hook of harness/spec.py's Workload): the
        training state itself (batch-norm running averages) when precise_bn_batches is 0;
        otherwise its batch-norm statistics recomputed with `params` on the first K batches of the
        training stream of seed PRECISE_BN_SEED (precise_bn_statistics; the same batches at every
        evaluation, the run's own stream untouched; for a batch-size variant, the stream of the
        workload it was made from, so the statistics batches are the same at every batch size)."""
        k = self.precise_bn_batches
        if k == 0:
            return model_state
        if jax.process_count() > 1:  # each process would compute statistics of its own share
            raise UserError(f"knob {PRECISE_BN_KNOB!r} needs a single process; set it to 0 for a "
                            "multi-process run")
        batches = itertools.islice((self.statistics_source or self).train_batches(data, PRECISE_BN_SEED), k)
        return self._precise_bn(params, model_state, jnp.stack([b["x"] for b in batches]))

    def statistics_model(self) -> nn.Module:
        """The model with batch-norm running-average momentum 0 (micro_batch_statistics)."""
        return self.model.clone(bn_momentum=0.0)

    @functools.cached_property
    def _precise_bn(self) -> Callable[[Params, ModelState, jax.Array], ModelState]:
        """precise_bn_statistics jitted for this workload's model and micro-batch (compiled at the
        first call: the harness's evaluator warm-up, harness/evaluation.py)."""
        model, micro = self.statistics_model(), self.micro_batch_size
        return jax.jit(lambda params, model_state, xs: precise_bn_statistics(model, params, model_state, xs,
                                                                             micro))

    def eval_sums(self, params: Params, model_state: ModelState, batch: Batch) -> dict[str, jax.Array]:
        logits: Any = self.model.apply({"params": params, **model_state}, batch["x"], train=False)
        mask = batch["mask"]
        losses = softmax_cross_entropy(logits, batch["y"], 0.0)
        correct = (logits.argmax(-1) == batch["y"]).astype(jnp.float32)
        return {"loss": (losses * mask).sum(), "accuracy": (correct * mask).sum(), "count": mask.sum()}

    # --- data -------------------------------------------------------------------------------
    def abstract_batch(self, batch_size: int, phase: int = 0) -> Batch:
        """Shapes and dtypes of a training batch (for compiling without data, e.g. memory reports)."""
        return {"x": jax.ShapeDtypeStruct((batch_size, *self.input_shape), jnp.float32),
                "y": jax.ShapeDtypeStruct((batch_size,), jnp.int32)}

    @abc.abstractmethod
    def load_data(self, data_dir: str | None) -> Any:
        """The dataset (spec.Workload.load_data)."""

    @abc.abstractmethod
    def train_batches(self, data: Any, seed: int, phase: int = 0, start: int = 0) -> Iterator[Batch]:
        """{"x", "y"} batches of this process's share from the `start`-th on
        (spec.Workload.train_batches)."""

    @abc.abstractmethod
    def eval_batches(self, data: Any, split: str) -> Iterator[Batch]:
        """{"x", "y", "mask"} batches of one shape (spec.Workload.eval_batches)."""


class DeviceResidentImageWorkload(ImageClassificationWorkload):
    """Images and labels held in device memory; batches gathered on the device."""

    def to_device(self, train_x: np.ndarray, train_y: np.ndarray,
                  eval_splits: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> DeviceSplits:
        return DeviceSplits(jnp.asarray(train_x), jnp.asarray(train_y),
                            {k: (jnp.asarray(x), jnp.asarray(y)) for k, (x, y) in eval_splits.items()})

    def train_batches(self, data: DeviceSplits, seed: int, phase: int = 0, start: int = 0
                      ) -> Iterator[Batch]:
        """Global batches without replacement within an epoch; the order depends only on (seed, epoch).

        Epoch e is the permutation `default_rng([seed, e])` of the training split cut into
        n // global_batch_size consecutive batches (the remainder is dropped), so batch k of the
        stream is batch k mod that count of epoch k // that count: `start` jumps there directly,
        without drawing the skipped batches (a run resumed at step `start` sees the same data).
        This process yields its contiguous share of each global batch (all of it on one host).
        Gathering happens on the device (async dispatch).
        """
        n, batch = int(data.train_x.shape[0]), self.global_batch_size
        local, offset = host_share(batch)
        per_epoch = n // batch
        if per_epoch == 0:  # (an endless loop without a batch otherwise)
            raise ValueError(f"{self.name}: global batch {batch} exceeds the {n} training examples")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        epoch, first = divmod(start, per_epoch)
        while True:
            perm = np.random.default_rng([seed, epoch]).permutation(n)
            for k in range(first, per_epoch):
                lo = k * batch + offset
                idx = jnp.asarray(perm[lo:lo + local])
                yield {"x": data.train_x[idx], "y": data.train_y[idx]}
            epoch, first = epoch + 1, 0

    def eval_batches(self, data: DeviceSplits, split: str) -> Iterator[Batch]:
        """This process's share of each eval batch of `split`, padded to one shape (mask 0)."""
        x, y = data.eval[split]
        n, size = int(x.shape[0]), self.eval_batch_size
        local, offset = host_share(size)
        for start in range(0, n, size):  # every process takes part in every global eval batch
            lo = min(start + offset, n)
            hi = min(lo + local, n)
            # The last batch is padded (on the device) so that every eval batch has one shape.
            yield pad_batch({"x": x[lo:hi], "y": y[lo:hi]}, local, xp=jnp)
