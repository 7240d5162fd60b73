"""ResNet v1.5 (bottleneck blocks with the stride in the 3x3 convolution), configurable in size;
ResNet v1.0 with stride_in_3x3=False (He et al. 2016: the stride in the first 1x1 convolution).

The same module builds ResNet-50 (stages (3, 4, 6, 3), widths (64, 128, 256, 512), expansion 4,
7x7/2 stem with 3x3/2 max-pool) and the small CPU network of `fashion_mnist_resnet`.
gamma0 is the initial scale of the last batch norm in each residual block (MLPerf: 0.0).
strided_padding is how the strided convolutions pad (layers.conv): "SAME" (the default, the small
network's), or "fixed", the MLPerf / TF reference's fixed_padding (the ImageNet ResNet-50s).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.nn import initializers

from workloads.models.layers import batch_norm, conv, dense


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 -> 1x1 expand, BN after each, projection shortcut. The block's stride is
    in the 3x3 (v1.5, stride_in_3x3) or in the first 1x1 (v1.0, He et al. 2016, Nado et al. Fig. 4's
    "ResNet v1.0" ablation); the shortcut's 1x1 projection has it in both."""

    width: int
    stride: int
    expansion: int
    bn_momentum: float
    bn_epsilon: float
    gamma0: float
    strided_padding: str = "SAME"
    stride_in_3x3: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        bn = lambda scale=1.0: batch_norm(train, self.bn_momentum, self.bn_epsilon, scale)  # noqa: E731
        out_features = self.width * self.expansion
        stride_1x1, stride_3x3 = (1, self.stride) if self.stride_in_3x3 else (self.stride, 1)
        y = nn.relu(bn()(conv(self.width, 1, stride_1x1, padding=self.strided_padding)(x)))
        y = nn.relu(bn()(conv(self.width, 3, stride_3x3, padding=self.strided_padding)(y)))
        y = bn(self.gamma0)(conv(out_features, 1)(y))
        if x.shape[-1] != out_features or self.stride != 1:
            x = bn()(conv(out_features, 1, self.stride, padding=self.strided_padding)(x))
        return nn.relu(x + y)


class ResNet(nn.Module):
    num_classes: int
    stage_sizes: Sequence[int]
    widths: Sequence[int]
    expansion: int = 4
    stem_features: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    stem_pool: bool = True
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    gamma0: float = 0.0
    strided_padding: str = "SAME"
    stride_in_3x3: bool = True  # v1.5; False: v1.0

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = conv(self.stem_features, self.stem_kernel, self.stem_stride, padding=self.strided_padding)(x)
        x = nn.relu(batch_norm(train, self.bn_momentum, self.bn_epsilon)(x))
        if self.stem_pool:
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for stage, (blocks, width) in enumerate(zip(self.stage_sizes, self.widths)):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                x = Bottleneck(width, stride, self.expansion, self.bn_momentum, self.bn_epsilon,
                               self.gamma0, self.strided_padding, self.stride_in_3x3)(x, train)
        x = jnp.mean(x, axis=(1, 2))
        # MLPerf reference: final dense layer initialised N(0, 0.01^2), bias zero.
        return dense(self.num_classes, initializers.normal(0.01))(x)
