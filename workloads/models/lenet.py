"""LeNet-5 (LeCun et al. 1998) as used for MNIST in You et al. 2019, Table 7: no batch norm.

conv5x5(6, pad SAME) - ReLU - maxpool2 - conv5x5(16, VALID) - ReLU - maxpool2 - dense 120 - dense 84
- dense 10.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from workloads.models.layers import conv_with_bias, dense


class LeNet5(nn.Module):
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        del train  # no dropout / batch norm
        x = nn.max_pool(nn.relu(conv_with_bias(6, 5, "SAME")(x)), (2, 2), strides=(2, 2))
        x = nn.max_pool(nn.relu(conv_with_bias(16, 5, "VALID")(x)), (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        x = nn.relu(dense(120)(x))
        x = nn.relu(dense(84)(x))
        return dense(self.num_classes)(x)
