"""Golden tests of lars against the numpy references of tests/_golden_reference.py: the MLPerf form
(the default) and You et al. 2019 Algorithm 1 (variant=you2019), and why not optax.lars.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _golden_reference import (
    BUDGET,
    RTOL,
    STEPS,
    assert_matches,
    max_rel_diff,
    optax_updates,
    run_submission,
    x64,  # noqa: F401  (autouse fixture: every test here in float64)
)
from _submission_helpers import (
    assert_check_refuses,
    context,
    load_submission,
    nest,
    random_grads,
    random_params,
)

from harness import spec
from submissions.lib import schedules, transforms


@pytest.mark.parametrize("exclude", [True, False])
@pytest.mark.parametrize("eps", [0.0, 1e-3])
def test_lars(exclude: bool, eps: float) -> None:
    assert_matches("lars", {"exclude_norm_and_bias": exclude, "eps": eps, "weight_decay": 0.01,
                            "trust_coefficient": 0.02, "init_learning_rate": 0.5})


@pytest.mark.parametrize("exclude", [True, False])
def test_lars_zero_norms_and_zero_gradient(exclude: bool) -> None:
    """A zero weight tensor and a zero BN gamma (trust 1), and zero gradients (trust 1, decay only)."""
    got = assert_matches("lars", {"exclude_norm_and_bias": exclude, "weight_decay": 0.01,
                                  "init_learning_rate": 0.5},
                         zero_params=("dense/kernel", "bn/scale"),
                         zero_grads=((0, "conv/kernel"), (2, "conv/kernel"), (4, "bn/scale")))
    assert all(np.all(np.isfinite(u)) for step in got for u in step.values())


def test_lars_trust_is_one_for_zero_weight() -> None:
    """First LARS step on a zero tensor: v = lr * 1 * g (trust 1), not eta * 0 = 0."""
    module = load_submission("lars")
    hp = {**module.DEFAULT_HPARAMS, "warmup_fraction": 0.0, "learning_rate": 2.0}
    params, grads = random_params(0, zero=("dense/kernel",)), random_grads(1, 1)
    got = run_submission("lars", hp, params, grads)[0]["dense/kernel"]
    np.testing.assert_allclose(got, -2.0 * grads[0]["dense/kernel"], rtol=RTOL)


def test_lars_differs_from_optax_lars_when_weight_decay_is_positive() -> None:
    """optax.lars divides by ||g + wd w||, MLPerf by ||g|| + wd ||w||; equal only for wd = 0."""
    lr = schedules.cosine(1.0, 10, 2)

    def pair(wd: float) -> tuple[list[dict], list[dict]]:
        ours = transforms.lars(lr, momentum=0.9, weight_decay=wd, trust_coefficient=0.01)
        theirs = optax.lars(lr, weight_decay=wd, trust_coefficient=0.01, momentum=0.9)
        return optax_updates(ours), optax_updates(theirs)

    assert max_rel_diff(*pair(0.0)) < 1e-10
    assert max_rel_diff(*pair(0.1)) > 1e-3


# --- variant you2019: You et al. 2019 Algorithm 1 ----------------------------------------------------

YOU2019 = {"variant": "you2019", "weight_decay": 0.01, "init_learning_rate": 0.5, "learning_rate": 0.5}


@pytest.mark.parametrize("exclude", [True, False])
@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_lars_you2019_algorithm_1(exclude: bool, momentum: float) -> None:
    """Eight steps (warmup, peak, decay) of Algorithm 1 against its numpy transcription."""
    assert_matches("lars", {**YOU2019, "exclude_norm_and_bias": exclude, "momentum": momentum})


@pytest.mark.parametrize("exclude", [True, False])
def test_lars_you2019_zero_norms(exclude: bool) -> None:
    """A zero weight tensor and zero BN gamma (ratio 1), and zero gradients: finite, as the reference."""
    got = assert_matches("lars", {**YOU2019, "exclude_norm_and_bias": exclude},
                         zero_params=("dense/kernel", "bn/scale"),
                         zero_grads=((0, "conv/kernel"), (2, "conv/kernel"), (4, "bn/scale")))
    assert all(np.all(np.isfinite(u)) for step in got for u in step.values())


def test_lars_you2019_first_step_by_hand() -> None:
    """Step 1 from m_0 = 0: m_1 = (1 - b1)(g + lambda w), and the update -lr ||w|| / ||m_1|| m_1 has
    norm lr ||w|| on every weight tensor, whatever the gradient's size: the learning rate is outside
    the momentum and the ratio normalises it. trust_coefficient and eps do not enter (set to 123 and 7
    here), and BN/bias (exclude_norm_and_bias) take the momentum alone."""
    module = load_submission("lars")
    hp = {**module.DEFAULT_HPARAMS, **YOU2019, "warmup_fraction": 0.0, "learning_rate": 2.0,
          "trust_coefficient": 123.0, "eps": 7.0}
    params, grads = random_params(0), random_grads(1, 1)
    got = run_submission("lars", hp, params, grads)[0]
    w, g = params["conv/kernel"], grads[0]["conv/kernel"]
    m = 0.1 * (g + 0.01 * w)
    np.testing.assert_allclose(got["conv/kernel"], -2.0 * np.linalg.norm(w) / np.linalg.norm(m) * m, rtol=RTOL)
    np.testing.assert_allclose(np.linalg.norm(got["conv/kernel"]), 2.0 * np.linalg.norm(w), rtol=RTOL)
    np.testing.assert_allclose(got["bn/scale"], -2.0 * 0.1 * grads[0]["bn/scale"], rtol=RTOL)  # no ratio


def test_lars_default_variant_is_the_mlperf_transformation_bit_for_bit() -> None:
    """variant defaults to mlperf, and the default hparams give, bit for bit, the updates of
    transforms.lars built as the submission built it before the variant existed."""
    module, ctx = load_submission("lars"), context(BUDGET)
    hp = dict(module.DEFAULT_HPARAMS)
    assert hp["variant"] == "mlperf"
    before = transforms.lars(schedules.from_hparams(hp, ctx), momentum=hp["momentum"],
                             weight_decay=hp["weight_decay"], trust_coefficient=hp["trust_coefficient"],
                             eps=hp["eps"], mask=spec.weight_mask(ctx.param_types))
    p = jax.tree.map(jnp.asarray, nest(random_params(0)))
    now_step = jax.jit(lambda g, s, p: module.update(g, s, p, hp, ctx))
    before_step = jax.jit(before.update)
    s_now, s_before = module.init(p, hp, ctx), before.init(p)
    for g in random_grads(1, STEPS):
        g = jax.tree.map(jnp.asarray, nest(g))
        (u_now, s_now), (u_before, s_before) = now_step(g, s_now, p), before_step(g, s_before, p)
        for x, y in zip(jax.tree.leaves(u_now), jax.tree.leaves(u_before)):
            np.testing.assert_array_equal(x, y)
        p = jax.tree.map(lambda a, b: a + b, p, u_now)


def test_lars_unknown_variant_is_a_one_line_error() -> None:
    module = load_submission("lars")
    assert_check_refuses(module, {**module.DEFAULT_HPARAMS, "variant": "tf"}, "unknown variant 'tf'",
                         "variant=mlperf or you2019")
