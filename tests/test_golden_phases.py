"""Golden tests of multi-phase runs: next_phase keeps or restarts each submission's state
(restart_per_phase), against the numpy references of tests/_golden_reference.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _golden_reference import (
    ADAGRAD_HP,
    ATOL,
    RTOL,
    SGD_HP,
    global_norms,
    np_schedule,
    phase_contexts,
    run_reference_phases,
    run_submission_phases,
    x64,  # noqa: F401  (autouse fixture: every test here in float64)
)
from _submission_helpers import (
    LAYOUT,
    load_submission,
    nest,
    random_grads,
    random_params,
)

PHASES = (5, 4)  # a 2-phase workload: 5 + 4 steps, budget 9
PHASE_OVERRIDES: dict[str, dict] = {
    "sgd": {**SGD_HP, "momentum": 0.9, "nesterov": True},
    "adagrad": {**ADAGRAD_HP, "weight_decay": 0.05},
    "nesterov": {**SGD_HP},
    "momentum": {**SGD_HP},
    "adamw": {"weight_decay": 0.5, "final_learning_rate": 1e-4, "eps": 1e-3},
    "lamb": {"weight_decay": 0.1, "final_learning_rate": 1e-3},
    "lars": {"weight_decay": 0.01, "trust_coefficient": 0.02, "init_learning_rate": 0.5},
    "bert_adamw": {"learning_rate": 0.01},
}


def phase_hparams(name: str, restart: bool) -> list[dict]:
    """Independent hparams per phase (Nado et al. Table 8 style): phase 2 has its own rate and warmup."""
    module = load_submission(name)
    first = {**module.DEFAULT_HPARAMS, **PHASE_OVERRIDES[name], "warmup_steps": 2,
             "restart_per_phase": restart}
    return [first, {**first, "learning_rate": 0.5 * first["learning_rate"], "warmup_steps": 1}]


def assert_phases_match_reference(name: str, hps: list[dict], params: dict, grads: list[list[dict]],
                                  label: str = "") -> None:
    """Every update of a two-phase run equals the float64 reference's, leaf by leaf."""
    got = run_submission_phases(name, hps, params, grads)
    want = run_reference_phases(name, hps, params, grads)
    for t in range(sum(PHASES)):
        for k in LAYOUT:
            np.testing.assert_allclose(got[t][k], want[t][k], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name} {label} step {t} {k}")


@pytest.mark.parametrize("restart", [False, True])
@pytest.mark.parametrize("name", list(PHASE_OVERRIDES))
def test_two_phases_continue_or_restart(name: str, restart: bool) -> None:
    hps, params = phase_hparams(name, restart), random_params(0)
    grads = random_grads(1, sum(PHASES))
    grads = [grads[:PHASES[0]], grads[PHASES[0]:]]
    assert_phases_match_reference(name, hps, params, grads, f"restart={restart}")


@pytest.mark.parametrize("name", ["adamw", "lamb", "bert_adamw"])
def test_restart_rewarms_from_zero_at_the_phase_boundary(name: str) -> None:
    """With a warmup from 0, the first update of phase 2 is exactly zero after a restart (the
    schedule is back at step 0: You et al.'s re-warm-up), and not when the state carries on."""
    params, grads = random_params(0), random_grads(1, sum(PHASES))
    grads = [grads[:PHASES[0]], grads[PHASES[0]:]]
    for restart in (False, True):
        hps = phase_hparams(name, restart)
        assert np_schedule(hps[1], 0, PHASES[1]) == 0.0
        first_of_phase_2 = run_submission_phases(name, hps, params, grads)[PHASES[0]]
        assert all(np.all(u == 0) for u in first_of_phase_2.values()) == restart, restart


@pytest.mark.parametrize("name", list(PHASE_OVERRIDES))
def test_next_phase_returns_the_state_unless_restarting(name: str) -> None:
    module = load_submission(name)
    contexts = phase_contexts(PHASES)
    p = jax.tree.map(jnp.asarray, nest(random_params(0)))
    keep, restart = phase_hparams(name, False), phase_hparams(name, True)
    state = module.init(p, keep[0], contexts[0])
    g = jax.tree.map(jnp.asarray, nest(random_grads(1, 1)[0]))
    _, state = module.update(g, state, p, keep[0], contexts[0])
    assert module.next_phase(state, p, keep[1], contexts[1]) is state
    fresh = module.next_phase(state, p, restart[1], contexts[1])
    for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(module.init(p, restart[1], contexts[1]))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_grad_clip_norm_changes_between_phases(name: str) -> None:
    """Phase 1 unclipped, phase 2 clipped to 0.5 with the state carried on (restart_per_phase
    false): clipping on and off have the same optimizer state, so next_phase's state fits."""
    hps = phase_hparams(name, False)
    hps[1] = {**hps[1], "grad_clip_norm": 0.5}
    grads = random_grads(1, sum(PHASES))
    assert min(global_norms(grads[PHASES[0]:])) > 0.5
    grads = [grads[:PHASES[0]], grads[PHASES[0]:]]
    params = random_params(0)
    assert_phases_match_reference(name, hps, params, grads)
