"""The contract: declared parameter types, knobs, metric direction."""

from __future__ import annotations

import collections

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from harness.spec import (
    Direction,
    Knob,
    ParamType,
    Phase,
    SubmissionContext,
    UserError,
    split_param_types,
    typed,
    validate_knobs,
    weight_mask,
)
from harness.training import abstract_init
from workloads import get_workload


def test_every_resnet_parameter_declares_its_type() -> None:
    w = get_workload("fashion_mnist_resnet")
    params, _, types = abstract_init(w)  # shapes only: the types are static, declared at init
    counts = collections.Counter(jax.tree.leaves(types, is_leaf=lambda t: isinstance(t, ParamType)))
    # stem conv + 3 blocks x (3 convs + projection) = 13 convs; 1 + 3 x 4 = 13 batch norms; 1 dense.
    assert counts == {ParamType.CONV_WEIGHT: 13, ParamType.BN_SCALE: 13, ParamType.BN_BIAS: 13,
                      ParamType.WEIGHT: 1, ParamType.BIAS: 1}
    assert jax.tree.structure(params) == jax.tree.structure(
        jax.tree.map(lambda t: 0, types, is_leaf=lambda t: isinstance(t, ParamType)))
    mask = weight_mask(types)
    assert mask["Dense_0"] == {"kernel": True, "bias": False}
    assert mask["Bottleneck_0"]["BatchNorm_2"] == {"scale": False, "bias": False}


def test_gamma0_initialises_the_last_bn_of_each_block() -> None:
    params, _, _ = get_workload("fashion_mnist_resnet", {"gamma0": 0.25}).init(jax.random.PRNGKey(0))
    for block in ("Bottleneck_0", "Bottleneck_1", "Bottleneck_2"):
        assert jnp.all(params[block]["BatchNorm_2"]["scale"] == 0.25)
        assert jnp.all(params[block]["BatchNorm_0"]["scale"] == 1.0)


def test_untyped_parameter_is_an_error() -> None:
    class Untyped(nn.Module):
        @nn.compact
        def __call__(self, x: jax.Array) -> jax.Array:
            x = nn.Dense(3, kernel_init=typed(nn.initializers.lecun_normal(), ParamType.WEIGHT),
                         bias_init=typed(nn.initializers.zeros, ParamType.BIAS))(x)
            return nn.Dense(2)(x)  # no declared types

    variables = Untyped().init(jax.random.PRNGKey(0), jnp.ones((1, 4)))
    with pytest.raises(TypeError, match="Dense_1.*kernel"):
        split_param_types(variables["params"])


def test_knob_validation() -> None:
    knobs = (Knob("label_smoothing", 0.1, 0.0, 0.5),)
    assert validate_knobs(knobs, {}, "w") == {"label_smoothing": 0.1}
    assert validate_knobs(knobs, {"label_smoothing": 0}, "w") == {"label_smoothing": 0.0}
    for given, message in [({"ls": 0.1}, "unknown knob 'ls'"), ({"label_smoothing": 0.9}, "outside"),
                           ({"label_smoothing": True}, "must be a number")]:
        with pytest.raises(UserError, match=message):
            validate_knobs(knobs, given, "w")


def test_direction_and_phases() -> None:
    assert Direction.MAXIMIZE.reached(0.9, 0.9) and not Direction.MAXIMIZE.reached(0.89, 0.9)
    assert Direction.MINIMIZE.reached(1.0, 1.1) and not Direction.MINIMIZE.reached(1.2, 1.1)
    assert Direction.MINIMIZE.better(1.0, 2.0) and Direction.MAXIMIZE.better(2.0, 1.0)
    phases = (Phase(name="a", steps=10, global_batch_size=8, micro_batch_size=4, seq_len=128),
              Phase(name="b", steps=20, global_batch_size=4, micro_batch_size=4, seq_len=512))
    ctx = SubmissionContext("w", {}, phases)
    assert ctx.phase_boundaries == (0, 10)
    # budget and batch are derived from the phases, so they cannot disagree with them
    assert ctx.step_budget == 30 and ctx.global_batch_size == 8
    assert SubmissionContext("w", {}, phases, phase_index=1).global_batch_size == 4
    with pytest.raises(ValueError, match="multiple of the micro-batch"):
        Phase(name="c", steps=1, global_batch_size=10, micro_batch_size=4)
