"""Golden tests of the Adam family against the numpy references of tests/_golden_reference.py:
adamw (bias correction optional, decoupled decay on weights only) and bert_adamw (the official
BERT AdamWeightDecayOptimizer), and the Adam direction against optax's.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _golden_reference import (
    ATOL,
    BUDGET,
    RTOL,
    STEPS,
    WEIGHT_LIKE,
    assert_matches,
    assert_same_updates_bit_for_bit,
    bert_grads,
    np_schedule,
    run_reference,
    run_submission,
    x64,  # noqa: F401  (autouse fixture: every test here in float64)
)
from _submission_helpers import (
    LAYOUT,
    assert_check_refuses,
    context,
    load_submission,
    nest,
    random_grads,
    random_params,
)

from harness import spec
from submissions.lib import schedules, transforms


def test_adamw_decay_on_all_variables() -> None:
    """exclude_norm_and_bias=False (Nado et al. Fig. 4 "L2 variables"): the decoupled decay on BN
    and bias too; with zero gradients only the decay moves anything, and it moves every tensor."""
    assert_matches("adamw", {"weight_decay": 0.5, "exclude_norm_and_bias": False, "eps": 1e-3})
    all_zero = tuple((t, k) for t in range(STEPS) for k in LAYOUT)
    got = assert_matches("adamw", {"weight_decay": 0.5, "exclude_norm_and_bias": False}, zero_grads=all_zero)
    assert all(bool(np.all(got[1][k] != 0)) for k in LAYOUT)


@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("schedule", ["cosine", "linear", "mlperf_polynomial"])
def test_adamw(bias_correction: bool, schedule: str) -> None:
    assert_matches("adamw", {"bias_correction": bias_correction, "schedule": schedule,
                             "weight_decay": 0.5, "final_learning_rate": 1e-4, "eps": 1e-3})


def test_adamw_decay_mask() -> None:
    """Zero gradients give a zero Adam direction: only the decoupled decay of weights remains."""
    all_zero = tuple((t, k) for t in range(STEPS) for k in LAYOUT)
    got = assert_matches("adamw", {"weight_decay": 0.5}, zero_grads=all_zero)
    for k in LAYOUT:
        assert bool(np.any(got[1][k] != 0)) == WEIGHT_LIKE[k], k


# --- bert_adamw: the official BERT AdamWeightDecayOptimizer ----------------------------------------


@pytest.mark.parametrize("overrides", [
    {},                                                          # warmup round(0.25 * 12) = 3 steps
    {"warmup_steps": 5, "weight_decay": 0.5, "eps": 1e-3},       # the jump at t = 5 within the 8 steps
    {"p_decay": 2.0, "final_learning_rate": 1e-4, "grad_clip_norm": 2.0},
])
def test_bert_adamw(overrides: dict) -> None:
    module = load_submission("bert_adamw")
    hp = {**module.DEFAULT_HPARAMS, "warmup_fraction": 0.25, "learning_rate": 0.01, **overrides}
    params, grads = random_params(0), bert_grads()
    norms = [math.sqrt(sum(float(np.sum(v * v)) for v in g.values())) for g in grads]
    assert min(norms) < hp["grad_clip_norm"] < max(norms)
    got = run_submission("bert_adamw", hp, params, grads)
    want = run_reference("bert_adamw", hp, params, grads)
    for t in range(STEPS):
        for k in LAYOUT:
            np.testing.assert_allclose(got[t][k], want[t][k], rtol=RTOL, atol=ATOL,
                                       err_msg=f"bert_adamw step {t} {k}")


def test_bert_adamw_warmup_boundary_and_no_bias_correction() -> None:
    """Step by step: lr 0 at t = 0 (a zero update), the warmup never reaches the peak, the first
    post-warmup step uses peak * (1 - w / T); the moments are not bias-corrected (at t = 1 the
    update is -lr_1 * m / (sqrt(v) + eps) with the raw m = 0.09 g0 + 0.1 g1, v = 0.000999 g0^2 +
    0.001 g1^2, about 3 times the bias-corrected Adam step)."""
    module = load_submission("bert_adamw")
    hp = {**module.DEFAULT_HPARAMS, "learning_rate": 0.01, "warmup_steps": 4, "weight_decay": 0.0}
    assert [np_schedule(hp, t) for t in (0, 1, 3, 4)] == pytest.approx(
        [0.0, 0.0025, 0.0075, 0.01 * (1 - 4 / 12)])
    params = random_params(0)
    grads = [{k: 0.3 * v for k, v in g.items()} for g in random_grads(1, 5)]  # global norm < 1: no clip
    got = run_submission("bert_adamw", hp, params, grads)
    assert all(np.all(u == 0) for u in got[0].values())
    g0, g1 = grads[0]["dense/kernel"], grads[1]["dense/kernel"]
    m, v = 0.09 * g0 + 0.1 * g1, 0.000999 * g0 ** 2 + 0.001 * g1 ** 2
    np.testing.assert_allclose(got[1]["dense/kernel"], -0.0025 * m / (np.sqrt(v) + 1e-6), rtol=RTOL)
    want = run_reference("bert_adamw", hp, params, grads)
    for t in range(5):
        for k in LAYOUT:
            np.testing.assert_allclose(got[t][k], want[t][k], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("clip", [0.0, -1.0])
def test_bert_adamw_requires_clipping(clip: float) -> None:
    """The BERT code always clips: grad_clip_norm <= 0 is a one-line UserError of check_hparams
    (and of init, which checks first)."""
    module = load_submission("bert_adamw")
    assert_check_refuses(module, {**module.DEFAULT_HPARAMS, "grad_clip_norm": clip}, "grad_clip_norm = ",
                         "is outside (0, inf)", str(clip))


def test_adam_direction_with_bias_correction_equals_optax() -> None:
    params = jax.tree.map(jnp.asarray, nest(random_params(0)))
    ours = transforms.scale_by_adam_optional_bias_correction(0.9, 0.99, 1e-6)
    theirs = optax.scale_by_adam(0.9, 0.99, 1e-6)
    s1, s2 = ours.init(params), theirs.init(params)
    for g in random_grads(1, 4):
        g = jax.tree.map(jnp.asarray, nest(g))
        (u1, s1), (u2, s2) = ours.update(g, s1, params), theirs.update(g, s2, params)
        for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_adamw_default_decay_mask_is_the_weight_mask_bit_for_bit() -> None:
    """exclude_norm_and_bias defaults to True and gives, bit for bit, the transformation adamw built
    before the option existed: transforms.adamw with mask spec.weight_mask."""
    module, ctx = load_submission("adamw"), context(BUDGET)
    hp = dict(module.DEFAULT_HPARAMS)
    assert hp["exclude_norm_and_bias"] is True and hp["grad_clip_norm"] == 0.0
    before = transforms.adamw(schedules.from_hparams(hp, ctx), b1=hp["b1"], b2=hp["b2"], eps=hp["eps"],
                              weight_decay=hp["weight_decay"], mask=spec.weight_mask(ctx.param_types),
                              bias_correction=hp["bias_correction"])
    assert_same_updates_bit_for_bit(module, before, hp, ctx)
