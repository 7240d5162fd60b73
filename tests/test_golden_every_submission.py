"""What every optax-built submission must do: keep float32 params float32, and expose the
optimizer(hparams, ctx) builder its init and update run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _golden_reference import (
    BUDGET,
    x64,  # noqa: F401  (autouse fixture: every test here in float64)
)
from _submission_helpers import (
    SUBMISSIONS,
    context,
    load_submission,
    nest,
    random_grads,
    random_params,
)


@pytest.mark.parametrize("name", SUBMISSIONS)
def test_float32_params_stay_float32(name: str) -> None:
    jax.config.update("jax_enable_x64", False)
    module, ctx = load_submission(name), context(BUDGET)
    p = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), nest(random_params(0)))
    g = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), nest(random_grads(1, 1)[0]))
    state = module.init(p, module.DEFAULT_HPARAMS, ctx)
    updates, state = jax.jit(lambda g, s, p: module.update(g, s, p, module.DEFAULT_HPARAMS, ctx))(g, state, p)
    assert {u.dtype for u in jax.tree.leaves(updates)} == {jnp.dtype(jnp.float32)}
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))


@pytest.mark.parametrize("name", SUBMISSIONS)
def test_optimizer_builder_is_public(name: str) -> None:
    """Every optax-built submission exposes optimizer(hparams, ctx), the transformation its init
    and update run (protocol.from_optax): same state, same update."""
    module, ctx = load_submission(name), context(BUDGET)
    tx = module.optimizer(module.DEFAULT_HPARAMS, ctx)
    assert isinstance(tx, optax.GradientTransformation)
    p = jax.tree.map(jnp.asarray, nest(random_params(0)))
    g = jax.tree.map(jnp.asarray, nest(random_grads(1, 1)[0]))
    state = module.init(p, module.DEFAULT_HPARAMS, ctx)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(tx.init(p))):
        np.testing.assert_array_equal(a, b)
    got, _ = module.update(g, state, p, module.DEFAULT_HPARAMS, ctx)
    want, _ = tx.update(g, tx.init(p), p)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(a, b)
