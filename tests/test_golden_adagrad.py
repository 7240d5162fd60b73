"""Golden tests of adagrad (Duchi et al. 2011, diagonal) against the numpy reference of
tests/_golden_reference.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from _golden_reference import (
    ADAGRAD_HP,
    STEPS,
    assert_matches,
    x64,  # noqa: F401  (autouse fixture: every test here in float64)
)


@pytest.mark.parametrize("initial_accumulator_value, weight_decay, eps", [
    (0.1, 0.0, 1e-7), (0.1, 0.05, 1e-2), (0.0, 0.05, 1e-7), (0.0, 0.0, 1e-2),
])  # eps = 1e-2: sqrt(a + eps) and sqrt(a) + eps differ by more than the tolerance
def test_adagrad(initial_accumulator_value: float, weight_decay: float, eps: float) -> None:
    """a_t = a_{t-1} + g_t^2 from a_0, w -= lr g / sqrt(a_t + eps), L2 on weights only."""
    assert_matches("adagrad", {**ADAGRAD_HP, "initial_accumulator_value": initial_accumulator_value,
                               "weight_decay": weight_decay, "eps": eps})


@pytest.mark.parametrize("eps", [1e-7, 0.0])
def test_adagrad_zero_accumulator(eps: float) -> None:
    """a_0 = 0 and zero gradients: the update is 0 where a_t = 0 (with eps = 0, g / sqrt(a + eps)
    alone would be 0 / 0). bn/scale's gradient is zero at steps 0-2 (a_t = 0 until step 3),
    dense/bias's at every step; conv/kernel's at step 0 only, where the L2 term (weights only)
    still gives g_t = lambda w_t != 0."""
    zero = (tuple((t, "bn/scale") for t in range(3)) + tuple((t, "dense/bias") for t in range(STEPS))
            + ((0, "conv/kernel"),))
    got = assert_matches("adagrad", {**ADAGRAD_HP, "initial_accumulator_value": 0.0, "eps": eps,
                                     "weight_decay": 0.05}, zero_grads=zero)
    assert all(np.all(np.isfinite(u)) for step in got for u in step.values())
    assert all(np.all(got[t]["bn/scale"] == 0) for t in range(3)) and np.all(got[3]["bn/scale"] != 0)
    assert all(np.all(got[t]["dense/bias"] == 0) for t in range(STEPS))
    assert np.all(got[0]["conv/kernel"] != 0)
