"""Golden tests of the SGD family (sgd, momentum, nesterov) against the numpy reference of
tests/_golden_reference.py: heavy ball and Nesterov, L2 on weights only (or on every tensor,
exclude_norm_and_bias=False), mu in [0, 1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from _golden_reference import (
    BUDGET,
    SGD_HP,
    WEIGHT_LIKE,
    assert_matches,
    assert_same_updates_bit_for_bit,
    x64,  # noqa: F401  (autouse fixture: every test here in float64)
)
from _submission_helpers import (
    assert_check_refuses,
    context,
    flatten,
    load_submission,
    nest,
    random_params,
)

from harness import spec
from submissions.lib import schedules


@pytest.mark.parametrize("name", ["nesterov", "momentum"])
@pytest.mark.parametrize("p_warmup", [1.0, 2.0])
def test_sgd_family(name: str, p_warmup: float) -> None:
    assert_matches(name, {**SGD_HP, "p_warmup": p_warmup})


@pytest.mark.parametrize("name", ["nesterov", "momentum", "sgd", "adagrad"])
def test_l2_only_on_weights(name: str) -> None:
    """With zero gradients only the L2 term moves anything: weights move, BN and biases must not."""
    module, ctx = load_submission(name), context(BUDGET)
    hp = {**module.DEFAULT_HPARAMS, **SGD_HP}
    p = jax.tree.map(jnp.asarray, nest(random_params(0)))
    zeros = jax.tree.map(jnp.zeros_like, p)
    updates, _ = module.update(zeros, module.init(p, hp, ctx), p, hp, ctx)
    for k, u in flatten(updates).items():
        assert bool(jnp.any(u != 0)) == WEIGHT_LIKE[k], k


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.0, True), (0.9, False), (0.9, True)])
def test_sgd(momentum: float, nesterov: bool) -> None:
    """mu = 0: plain SGD, w -= lr (g + lambda w) (the buffer holds g; nesterov changes nothing); mu > 0: heavy
    ball or Nesterov. L2 (lambda = 0.05) on weights only, in the comparison with the reference."""
    assert_matches("sgd", {**SGD_HP, "momentum": momentum, "nesterov": nesterov})


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov"])
@pytest.mark.parametrize("momentum", [-0.1, 1.0])
def test_sgd_family_momentum_outside_0_1_is_a_check_error(name: str, momentum: float) -> None:
    """The shared check (the sgd submission's) takes mu in [0, 1) only; init checks first too."""
    module = load_submission(name)
    assert_check_refuses(module, {**module.DEFAULT_HPARAMS, "momentum": momentum}, "momentum", str(momentum))


@pytest.mark.parametrize("name", ["nesterov", "momentum", "sgd"])
def test_l2_on_all_variables(name: str) -> None:
    """exclude_norm_and_bias=False (Nado et al. Fig. 4 "L2 variables", App. B): L2 on BN scales and
    offsets and biases too, against the reference over 8 steps; with zero gradients every tensor
    moves."""
    hp = {**SGD_HP, "exclude_norm_and_bias": False, "momentum": 0.9}
    assert_matches(name, hp)
    module, ctx = load_submission(name), context(BUDGET)
    hp = {**module.DEFAULT_HPARAMS, **hp}
    p = jax.tree.map(jnp.asarray, nest(random_params(0)))
    updates, _ = module.update(jax.tree.map(jnp.zeros_like, p), module.init(p, hp, ctx), p, hp, ctx)
    assert all(bool(jnp.all(u != 0)) for u in flatten(updates).values())


@pytest.mark.parametrize("name, nesterov", [("nesterov", True), ("momentum", False), ("sgd", False)])
def test_default_l2_mask_is_the_weight_mask_bit_for_bit(name: str, nesterov: bool) -> None:
    """exclude_norm_and_bias defaults to True and gives, bit for bit, the transformation the SGD
    family built before the option existed: L2 masked to spec.weight_mask, then optax.sgd."""
    module, ctx = load_submission(name), context(BUDGET)
    hp = {**module.DEFAULT_HPARAMS, **SGD_HP, "momentum": 0.9}
    assert hp["exclude_norm_and_bias"] is True
    before = optax.chain(optax.add_decayed_weights(hp["weight_decay"], spec.weight_mask(ctx.param_types)),
                         optax.sgd(schedules.from_hparams(hp, ctx), hp["momentum"], nesterov=nesterov))
    assert_same_updates_bit_for_bit(module, before, hp, ctx)
