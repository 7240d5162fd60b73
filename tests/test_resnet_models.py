"""The ResNet model options: MLPerf's fixed padding of strided convolutions on the ImageNet
ResNet-50s (checked against the reference's padding arithmetic and an explicitly padded VALID
convolution), ResNet v1.0 vs v1.5, the `virtual_batch_size` knob, and the small ResNet of
`fashion_mnist_resnet` unchanged by any of it (its studies run on it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness.spec import UserError, split_param_types
from workloads.fashion_mnist import FashionMnistResNet
from workloads.imagenet import ImagenetResNet50
from workloads.models import layers

LOGITS = Path(__file__).parent / "data" / "models" / "fashion_mnist_resnet_logits.npy"


def reference_fixed_padding(kernel_size: int) -> tuple[int, int]:
    """The MLPerf / TF official ResNet's fixed_padding, transcribed: pad_total = kernel_size - 1,
    pad_beg = pad_total // 2, pad_end = pad_total - pad_beg (then the conv runs with VALID)."""
    pad_total = kernel_size - 1
    pad_beg = pad_total // 2
    return pad_beg, pad_total - pad_beg


def conv_calls(model: Any, variables: Any, x: jax.Array) -> list[tuple[int, tuple[int, int], tuple]]:
    """(kernel size, window strides, padding) of every convolution of `model` applied to `x`, in
    order, from the jaxpr (what XLA is given)."""
    jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, x)
    return [(int(e.invars[1].aval.shape[0]), tuple(e.params["window_strides"]),
             tuple(map(tuple, e.params["padding"])))
            for e in jaxpr.jaxpr.eqns if e.primitive.name == "conv_general_dilated"]


@pytest.mark.parametrize("kernel, size", [(7, 224), (3, 56), (3, 28), (3, 15), (1, 56), (1, 15)])
def test_fixed_padding_is_the_references_pad_then_valid(kernel: int, size: int) -> None:
    """A stride-2 conv with padding="fixed" equals lax's VALID conv of the input padded by the
    reference's arithmetic; on even inputs with kernel > 1 that is not SAME."""
    assert layers.fixed_padding(kernel) == (reference_fixed_padding(kernel),) * 2
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, size, size, 3)), jnp.float32)
    conv = layers.conv(4, kernel, 2, padding="fixed")
    variables = conv.init(jax.random.PRNGKey(0), x)
    got = conv.apply(variables, x)
    beg, end = reference_fixed_padding(kernel)
    padded = np.pad(np.asarray(x), ((0, 0), (beg, end), (beg, end), (0, 0)))
    kernel_array = variables["params"]["kernel"]
    kernel_array = getattr(kernel_array, "value", kernel_array)  # the TypedParam box's array
    want = jax.lax.conv_general_dilated(padded, kernel_array, (2, 2), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    same = layers.conv(4, kernel, 2).apply(variables, x)
    if kernel > 1 and size % 2 == 0:  # SAME pads (k - 2) // 2 before, fixed (k - 1) // 2
        assert float(jnp.max(jnp.abs(same - got))) > 1e-3
    else:
        np.testing.assert_allclose(same, got, rtol=1e-5, atol=1e-5)


def test_unknown_padding_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown conv padding 'VALID'"):
        layers.conv(4, 3, 2, padding="VALID")


def resnet50_convs(knobs: dict[str, float] | None = None) -> list[tuple[int, tuple[int, int], tuple]]:
    wl = ImagenetResNet50(knobs)
    x = jnp.zeros((1, 224, 224, 3), jnp.float32)
    variables = jax.eval_shape(lambda r: wl.model.init(r, x, train=False), jax.random.PRNGKey(0))
    return conv_calls(wl.model, variables, x)


def test_imagenet_resnet50_strided_convs_use_fixed_padding() -> None:
    """Every strided convolution of the ImageNet ResNet-50 (stem 7x7/2, the 3x3/2 and the 1x1/2
    projection of each first block of stages 2-4) pads as the reference's fixed_padding; the
    stride-1 ones as SAME (for odd kernels the same pads)."""
    convs = resnet50_convs()
    assert len(convs) == 53
    strided = [(k, pads) for k, strides, pads in convs if strides == (2, 2)]
    assert sorted(k for k, _ in strided) == [1, 1, 1, 3, 3, 3, 7]  # stage 1's blocks have stride 1
    for k, pads in strided:
        assert pads == (reference_fixed_padding(k),) * 2, (k, pads)
    assert convs[0] == (7, (2, 2), ((3, 3), (3, 3)))  # SAME would pad (2, 3) on 224
    for k, strides, pads in convs:
        if strides == (1, 1):
            assert pads == (((k - 1) // 2, (k - 1) // 2),) * 2


def test_resnet_version_1_0_strides_the_first_1x1() -> None:
    """v1.0 (He et al. 2016; Nado Fig. 4 'ResNet v1.0'): in each downsampling block the stride is in
    the first 1x1 conv, not in the 3x3; the same parameters (25,557,032)."""
    v15, v10 = resnet50_convs(), resnet50_convs({"resnet_version": 1.0})
    assert len(v10) == len(v15) == 53
    strided = lambda convs: sorted(k for k, s, _ in convs if s == (2, 2))  # noqa: E731
    assert strided(v15) == [1, 1, 1, 3, 3, 3, 7]  # 3 projections, 3 3x3s of stages 2-4, the stem
    assert strided(v10) == [1, 1, 1, 1, 1, 1, 7]  # 3 projections, 3 first 1x1s, the stem
    wl = ImagenetResNet50({"resnet_version": 1.0})
    boxed = jax.eval_shape(lambda r: wl.model.init(r, jnp.zeros((1, 224, 224, 3)), train=False),
                           jax.random.PRNGKey(0))
    params, _ = split_param_types(boxed["params"])
    assert sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params)) == 25_557_032
    with pytest.raises(UserError, match=r"^knob 'resnet_version'=1.2 for workload imagenet_resnet50: "
                                        r"pass 1.0 or 1.5$"):
        ImagenetResNet50({"resnet_version": 1.2})


def test_virtual_batch_size_is_the_ghost_batch_norm_span() -> None:
    """Nado Fig. 4 'virtual batch norm 256': the micro-batch (ghost BN span) of every phase."""
    assert ImagenetResNet50().micro_batch_size == 64
    wl = ImagenetResNet50({"virtual_batch_size": 256})
    assert wl.micro_batch_size == 256 and [p.micro_batch_size for p in wl.phases] == [256]
    for bad in (100, 64.5):
        with pytest.raises(UserError, match=f"^knob 'virtual_batch_size'={bad:g} for workload "
                                            "imagenet_resnet50 must be a whole number that divides"):
            ImagenetResNet50({"virtual_batch_size": bad})


# --- fashion_mnist_resnet: unchanged -----------------------------------------------------------------

#: (kernel, strides, padding) of each convolution of fashion_mnist_resnet's model on 28x28 inputs,
#: recorded from the code before the padding option existed (commit c81d255): SAME everywhere, so
#: the stride-2 3x3 stem and 3x3 blocks pad (0, 1) on even inputs.
FASHION_MNIST_CONVS = [
    (3, (2, 2), ((0, 1), (0, 1))), (1, (1, 1), ((0, 0), (0, 0))), (3, (1, 1), ((1, 1), (1, 1))),
    (1, (1, 1), ((0, 0), (0, 0))), (1, (1, 1), ((0, 0), (0, 0))), (1, (1, 1), ((0, 0), (0, 0))),
    (3, (2, 2), ((0, 1), (0, 1))), (1, (1, 1), ((0, 0), (0, 0))), (1, (2, 2), ((0, 0), (0, 0))),
    (1, (1, 1), ((0, 0), (0, 0))), (3, (2, 2), ((1, 1), (1, 1))), (1, (1, 1), ((0, 0), (0, 0))),
    (1, (2, 2), ((0, 0), (0, 0))),
]


def test_fashion_mnist_resnet_is_unchanged() -> None:
    """The small ResNet keeps SAME padding and v1.5 strides (its studies are running): the same
    convolutions, strides and pads as before the options existed, and the same logits at init
    (seed 0) on a fixed input as recorded then (tests/data/models/fashion_mnist_resnet_logits.npy,
    written at commit c81d255; a changed pad moves them by far more than the tolerance)."""
    wl = FashionMnistResNet()
    assert (wl.model.strided_padding, wl.model.stride_in_3x3) == ("SAME", True)
    params, state, _ = wl.init(jax.random.PRNGKey(0))
    x = np.random.default_rng(0).standard_normal((4, 28, 28, 1)).astype(np.float32)
    variables = {"params": params, **state}
    assert conv_calls(wl.model, variables, jnp.asarray(x)) == FASHION_MNIST_CONVS
    logits = wl.model.apply(variables, x, train=False)
    np.testing.assert_allclose(np.asarray(logits), np.load(LOGITS), rtol=1e-5, atol=1e-7)
    explicit = wl.model.clone(strided_padding="SAME", stride_in_3x3=True).apply(variables, x, train=False)
    np.testing.assert_array_equal(np.asarray(explicit), np.asarray(logits))
