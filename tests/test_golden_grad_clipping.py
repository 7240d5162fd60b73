"""Golden tests of grad_clip_norm (global-norm clipping before adamw / lamb, the BERT code's
clip_by_global_norm) against the numpy references of tests/_golden_reference.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _golden_reference import (
    BUDGET,
    assert_matches,
    bert_grads,
    global_norms,
    max_rel_diff,
    x64,  # noqa: F401  (autouse fixture: every test here in float64)
)
from _submission_helpers import (
    LAYOUT,
    context,
    load_submission,
    nest,
    random_grads,
    random_params,
)

CLIP_CASES = {
    "adamw": [{"bias_correction": True, "weight_decay": 0.5, "eps": 1e-3},
              {"bias_correction": False, "schedule": "mlperf_polynomial", "eps": 1e-6,
               "final_learning_rate": 1e-4}],
    "lamb": [{"bias_correction": True, "exclude_norm_and_bias": True, "weight_decay": 0.1},
             {"bias_correction": False, "exclude_norm_and_bias": False, "weight_decay": 0.1,
              "final_learning_rate": 1e-3}],
}


@pytest.mark.parametrize("clip", [0.0, 1.0, 2.5, 100.0])  # off; clips the x10 steps (x2); never reached
@pytest.mark.parametrize("case", [0, 1])
@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_grad_clip_norm(name: str, case: int, clip: float) -> None:
    """Gradients with global norms on both sides of 1.0 and 2.5 (x10 / x0.3 steps: norms 9-12 and
    0.27-0.37): c = 1.0 and 2.5 clip the x10 steps only, c = 100 never clips, c = 0 is off."""
    grads = bert_grads()
    norms = global_norms(grads)
    assert max(norms[1::2]) < 1.0 < 2.5 < min(norms[::2]) and max(norms) < 100.0
    got = assert_matches(name, {**CLIP_CASES[name][case], "grad_clip_norm": clip}, grads=grads)
    if clip in (0.0, 100.0):
        return
    # the clip is active: the updates after step 0 (lr 0 there) differ from the unclipped ones, so
    # the comparison with the reference above did test the clipping
    unclipped = assert_matches(name, {**CLIP_CASES[name][case], "grad_clip_norm": 0.0}, grads=grads)
    assert max_rel_diff(got[1:], unclipped[1:]) > 1e-3


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_grad_clip_norm_zero_gradient(name: str) -> None:
    """An all-zero gradient with clipping on: ||g|| = 0 < c leaves g as is (no 0/0)."""
    all_zero = tuple((t, k) for t in (0, 2) for k in LAYOUT)
    got = assert_matches(name, {"grad_clip_norm": 1.0, "weight_decay": 0.1}, zero_grads=all_zero)
    assert all(np.all(np.isfinite(u)) for step in got for u in step.values())


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_grad_clip_norm_float32(name: str) -> None:
    jax.config.update("jax_enable_x64", False)
    module, ctx = load_submission(name), context(BUDGET)
    hp = {**module.DEFAULT_HPARAMS, "grad_clip_norm": 0.5}
    p = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), nest(random_params(0)))
    g = jax.tree.map(lambda x: jnp.asarray(10 * x, jnp.float32), nest(random_grads(1, 1)[0]))
    state = module.init(p, hp, ctx)
    updates, _ = jax.jit(lambda g, s, p: module.update(g, s, p, hp, ctx))(g, state, p)
    assert {u.dtype for u in jax.tree.leaves(updates)} == {jnp.dtype(jnp.float32)}
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))
