"""Shared machinery of the image-classification workloads: loss with label smoothing, eval sums
(`ImageClassificationWorkload`), and device-resident data with deterministic per-epoch shuffling
(`DeviceResidentImageWorkload`, for datasets that fit in device memory: Fashion-MNIST; ImageNet
reads through tf.data instead)."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from harness.spec import (
    Batch,
    Direction,
    Knob,
    ModelState,
    Params,
    ParamTypes,
    Phase,
    split_param_types,
    validate_knobs,
)
from workloads.data.common import host_share, pad_batch


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

    def __init__(self, knobs: Mapping[str, Any] | None = None) -> None:
        self.knobs = validate_knobs(self.KNOBS, knobs or {}, self.name)
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
