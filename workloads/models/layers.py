"""Flax layers that declare the ParamType of each parameter they create."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
from jax.nn import initializers

from harness.spec import ParamType, typed


def param(module: nn.Module, name: str, init: Callable[..., Any], param_type: ParamType,
          shape: tuple[int, ...]) -> jax.Array:
    """A parameter of `module` created by `init` and declared as `param_type`. Flax unboxes the
    TypedParam box (an AxisMetadata) when it returns the value: this is the array."""
    value: Any = module.param(name, typed(init, param_type), shape)
    return value


def conv(features: int, kernel: int, stride: int = 1, name: str | None = None) -> nn.Conv:
    """Bias-free convolution, He-normal (fan_out) init as the MLPerf ResNet."""
    return nn.Conv(features, (kernel, kernel), strides=stride, padding="SAME", use_bias=False,
                   kernel_init=typed(initializers.variance_scaling(2.0, "fan_out", "normal"),
                                     ParamType.CONV_WEIGHT), name=name)


def conv_with_bias(features: int, kernel: int, padding: str = "SAME", name: str | None = None) -> nn.Conv:
    return nn.Conv(features, (kernel, kernel), padding=padding,
                   kernel_init=typed(initializers.lecun_normal(), ParamType.CONV_WEIGHT),
                   bias_init=typed(initializers.zeros, ParamType.BIAS), name=name)


_LECUN_NORMAL = initializers.lecun_normal()


def dense(features: int, kernel_init: initializers.Initializer = _LECUN_NORMAL,
          name: str | None = None) -> nn.Dense:
    return nn.Dense(features, kernel_init=typed(kernel_init, ParamType.WEIGHT),
                    bias_init=typed(initializers.zeros, ParamType.BIAS), name=name)


def batch_norm(train: bool, momentum: float, epsilon: float, scale_init: float = 1.0,
               name: str | None = None) -> nn.BatchNorm:
    """BatchNorm over the batch it sees: inside the harness's micro-batch scan that is a ghost batch.

    Flax's running average is ra = momentum * ra + (1 - momentum) * batch_stat, the MLPerf convention.
    """
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon,
                        scale_init=typed(initializers.constant(scale_init), ParamType.BN_SCALE),
                        bias_init=typed(initializers.zeros, ParamType.BN_BIAS), name=name)

