"""Golden tests of lamb (You et al. 2019 Algorithm 2, the Google/BERT and Nado et al. Table 5
variants) against the numpy reference of tests/_golden_reference.py, and why not optax.lamb.
"""

from __future__ import annotations

import numpy as np
import optax
import pytest
from _golden_reference import (
    WEIGHT_LIKE,
    assert_matches,
    max_rel_diff,
    optax_updates,
    x64,  # noqa: F401  (autouse fixture: every test here in float64)
)
from _submission_helpers import (
    LAYOUT,
    param_types,
)

from harness import spec
from submissions.lib import schedules, transforms


@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("exclude", [True, False])
def test_lamb(bias_correction: bool, exclude: bool) -> None:
    assert_matches("lamb", {"bias_correction": bias_correction, "exclude_norm_and_bias": exclude,
                            "weight_decay": 0.1, "final_learning_rate": 1e-3})


@pytest.mark.parametrize("exclude", [True, False])
def test_lamb_zero_norms(exclude: bool) -> None:
    """Zero-initialised BN gamma and dense kernel (||w|| = 0 -> ratio 1), and a zero gradient step."""
    got = assert_matches("lamb", {"exclude_norm_and_bias": exclude, "weight_decay": 0.1},
                         zero_params=("bn/scale", "dense/kernel"),
                         zero_grads=((0, "conv/kernel"), (3, "dense/kernel")))
    assert all(np.all(np.isfinite(u)) for step in got for u in step.values())


def test_lamb_differs_from_optax_lamb() -> None:
    """optax.lamb always bias-corrects and its mask excludes only the decay, never the trust ratio."""
    lr, mask = schedules.linear_warmup_linear_decay(0.01, 2, 10), spec.weight_mask(param_types())
    optax_lamb = optax_updates(optax.lamb(lr, weight_decay=0.1, mask=mask))
    pure = optax_updates(transforms.lamb(lr, weight_decay=0.1, mask=True))
    # Pure Algorithm 2 (bias-corrected, ratio on every tensor) is exactly optax.lamb:
    assert max_rel_diff(pure, optax_updates(optax.lamb(lr, weight_decay=0.1))) < 1e-10
    excluded = optax_updates(transforms.lamb(lr, weight_decay=0.1, mask=mask))
    norm_or_bias = [k for k in LAYOUT if not WEIGHT_LIKE[k]]
    assert max_rel_diff(excluded, optax_lamb, [k for k in LAYOUT if WEIGHT_LIKE[k]]) < 1e-10
    assert max_rel_diff(excluded, optax_lamb, norm_or_bias) > 1e-3  # ratio 1 here, ||w||/||r|| in optax
    no_correction = optax_updates(transforms.lamb(lr, weight_decay=0.1, mask=mask, bias_correction=False))
    assert max_rel_diff(no_correction, optax_lamb) > 1e-3
