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


#: How a strided convolution pads (`conv`): "SAME" (XLA's: total max((ceil(n / s) - 1) s + k - n, 0),
#: the smaller half before) or "fixed" (the MLPerf / TF official ResNet's fixed_padding).
PADDINGS = ("SAME", "fixed")


def fixed_padding(kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The MLPerf / TF official ResNet's ``fixed_padding`` of a k x k kernel, independent of the
    input size: pad_total = k - 1, pad_beg = pad_total // 2, pad_end = pad_total - pad_beg on both
    spatial axes (the reference pads so, then convolves with padding VALID). On even inputs it is
    not SAME's: a 7x7/2 on 224 pads (3, 3), SAME (2, 3); a 3x3/2 on 56 pads (1, 1), SAME (0, 1)."""
    pad_total = kernel - 1
    pad_beg = pad_total // 2
    return (pad_beg, pad_total - pad_beg), (pad_beg, pad_total - pad_beg)


def conv(features: int, kernel: int, stride: int = 1, name: str | None = None, padding: str = "SAME"
         ) -> nn.Conv:
    """Bias-free convolution, He-normal (fan_out) init as the MLPerf ResNet.

    padding "SAME": XLA's SAME at every stride. "fixed": the reference's conv2d_fixed_padding,
    `fixed_padding` when stride > 1 and SAME at stride 1 (where the two agree for odd kernels).
    """
    if padding not in PADDINGS:
        raise ValueError(f"unknown conv padding {padding!r}; known: {', '.join(PADDINGS)}")
    pads: str | tuple[tuple[int, int], tuple[int, int]] = (
        fixed_padding(kernel) if padding == "fixed" and stride > 1 else "SAME")
    return nn.Conv(features, (kernel, kernel), strides=stride, padding=pads, use_bias=False,
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

