"""Each submission's update against an independent plain-numpy float64 implementation of its reference.

The references below are written from the formulas (Nado et al. 2021 Sec. 2.1; You et al. 2019
Algorithm 2; MLPerf LARS as in DESIGN.md "Numerical references"), not from the code under test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _submission_helpers import (LAYOUT, context, flatten, load_submission, nest, param_types,
                                 random_grads, random_params)

from harness import spec
from submissions.lib import schedules, transforms

STEPS = 8
BUDGET = 12  # warmup round(0.25 * 12) = 3 steps, so the 8 steps cover warmup, peak and decay
RTOL, ATOL = 1e-6, 1e-12
WEIGHT_LIKE = {name: spec.is_weight_like(t) for name, (_, t) in LAYOUT.items()}


@pytest.fixture(autouse=True)
def x64() -> Iterator[None]:
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


# --- numpy references ---------------------------------------------------------------------------


def np_schedule(hp: dict[str, Any], t: int, total: int = BUDGET) -> float:
    w = int(round(hp["warmup_fraction"] * total))
    peak, final = hp["learning_rate"], hp["final_learning_rate"]
    if hp["schedule"] == "mlperf_polynomial":
        if w > 0 and t <= w:
            return hp["init_learning_rate"] + (peak - hp["init_learning_rate"]) * (t / w) ** hp["p_warmup"]
        d = total - w + 1
        return final + (peak - final) * (1 - min(t - w, d) / d) ** hp["p_decay"]
    if t < w:
        return peak * t / w
    frac = min(t - w, total - w) / (total - w)
    if hp["schedule"] == "cosine":
        return final + (peak - final) * 0.5 * (1 + math.cos(math.pi * frac))
    assert hp["schedule"] == "linear"
    return final + (peak - final) * (1 - frac)


def norm(x: np.ndarray) -> float:
    return float(np.sqrt(np.sum(x * x)))


def ref_sgd(hp: dict, nesterov: bool) -> Callable:
    def step(t: int, w: dict, g: dict, s: dict) -> dict:
        lr, mu, out = np_schedule(hp, t), hp["momentum"], {}
        for k in w:
            gk = g[k] + hp["weight_decay"] * w[k] if WEIGHT_LIKE[k] else g[k]
            s[k] = mu * s.get(k, 0.0) + gk
            out[k] = -lr * (mu * s[k] + gk) if nesterov else -lr * s[k]
        return out
    return step


def adam_direction(hp: dict, t: int, g: np.ndarray, s: dict, k: str) -> np.ndarray:
    b1, b2 = hp["b1"], hp["b2"]
    s[k + "/m"] = b1 * s.get(k + "/m", 0.0) + (1 - b1) * g
    s[k + "/v"] = b2 * s.get(k + "/v", 0.0) + (1 - b2) * g * g
    m, v = s[k + "/m"], s[k + "/v"]
    if hp["bias_correction"]:
        m, v = m / (1 - b1 ** (t + 1)), v / (1 - b2 ** (t + 1))
    return m / (np.sqrt(v) + hp["eps"])


def ref_adamw(hp: dict) -> Callable:
    def step(t: int, w: dict, g: dict, s: dict) -> dict:
        lr = np_schedule(hp, t)
        decay = {k: hp["weight_decay"] * w[k] if WEIGHT_LIKE[k] else 0.0 for k in w}
        return {k: -lr * (adam_direction(hp, t, g[k], s, k) + decay[k]) for k in w}
    return step


def ref_lamb(hp: dict) -> Callable:
    def step(t: int, w: dict, g: dict, s: dict) -> dict:
        lr, out = np_schedule(hp, t), {}
        for k in w:
            r = adam_direction(hp, t, g[k], s, k)
            if WEIGHT_LIKE[k] or not hp["exclude_norm_and_bias"]:
                u = r + hp["weight_decay"] * w[k]
                wn, un = norm(w[k]), norm(u)
                ratio = wn / un if wn > 0 and un > 0 else 1.0
                out[k] = -lr * ratio * u
            else:
                out[k] = -lr * r
        return out
    return step


def ref_lars(hp: dict) -> Callable:
    def step(t: int, w: dict, g: dict, s: dict) -> dict:
        lr, wd, out = np_schedule(hp, t), hp["weight_decay"], {}
        for k in w:
            if WEIGHT_LIKE[k] or not hp["exclude_norm_and_bias"]:
                wn, gn = norm(w[k]), norm(g[k])
                trust = 1.0
                if wn > 0 and gn > 0:
                    trust = hp["trust_coefficient"] * wn / (gn + wd * wn + hp["eps"])
                s[k] = hp["momentum"] * s.get(k, 0.0) + lr * trust * (g[k] + wd * w[k])
            else:
                s[k] = hp["momentum"] * s.get(k, 0.0) + lr * g[k]
            out[k] = -s[k]
        return out
    return step


REFERENCES: dict[str, Callable[[dict], Callable]] = {
    "nesterov": lambda hp: ref_sgd(hp, nesterov=True),
    "momentum": lambda hp: ref_sgd(hp, nesterov=False),
    "adamw": ref_adamw,
    "lamb": ref_lamb,
    "lars": ref_lars,
}


# --- running the submission and the reference side by side ---------------------------------------


def run_submission(name: str, hp: dict, params: dict, grads: list[dict]) -> list[dict[str, np.ndarray]]:
    """Flat float64 updates of each step, params advanced by the harness rule params + updates."""
    module, ctx = load_submission(name), context(BUDGET)
    p = jax.tree.map(jnp.asarray, nest(params))
    state = module.init(p, hp, ctx)
    step = jax.jit(lambda g, s, p: module.update(g, s, p, hp, ctx))
    out = []
    for g in grads:
        updates, state = step(jax.tree.map(jnp.asarray, nest(g)), state, p)
        assert all(u.dtype == jnp.float64 for u in jax.tree.leaves(updates))
        p = jax.tree.map(lambda a, b: a + b, p, updates)
        out.append({k: np.asarray(v) for k, v in flatten(updates).items()})
    return out


def run_reference(name: str, hp: dict, params: dict, grads: list[dict]) -> list[dict[str, np.ndarray]]:
    step, w, state, out = REFERENCES[name](hp), {k: v.copy() for k, v in params.items()}, {}, []
    for t, g in enumerate(grads):
        updates = step(t, w, g, state)
        w = {k: w[k] + updates[k] for k in w}
        out.append(updates)
    return out


def assert_matches(name: str, overrides: dict, *, zero_params: tuple[str, ...] = (),
                   zero_grads: tuple[tuple[int, str], ...] = ()) -> list[dict[str, np.ndarray]]:
    module = load_submission(name)
    hp = {**module.DEFAULT_HPARAMS, "warmup_fraction": 0.25, **overrides}
    params, grads = random_params(0, zero_params), random_grads(1, STEPS, zero_grads)
    got, want = run_submission(name, hp, params, grads), run_reference(name, hp, params, grads)
    lrs = {np_schedule(hp, t) for t in range(STEPS)}
    assert len(lrs) >= 5, "the schedule must change over the test steps"
    for t in range(STEPS):
        for k in LAYOUT:
            np.testing.assert_allclose(got[t][k], want[t][k], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name} step {t} {k}")
    return got


# --- golden tests ---------------------------------------------------------------------------------

SGD_HP = {"init_learning_rate": 0.05, "final_learning_rate": 0.01, "weight_decay": 0.05}


@pytest.mark.parametrize("name", ["nesterov", "momentum"])
@pytest.mark.parametrize("p_warmup", [1.0, 2.0])
def test_sgd_family(name: str, p_warmup: float) -> None:
    assert_matches(name, {**SGD_HP, "p_warmup": p_warmup})


@pytest.mark.parametrize("name", ["nesterov", "momentum"])
def test_sgd_family_l2_only_on_weights(name: str) -> None:
    """With zero gradients only the L2 term moves anything: weights move, BN and biases must not."""
    module, ctx = load_submission(name), context(BUDGET)
    hp = {**module.DEFAULT_HPARAMS, **SGD_HP}
    p = jax.tree.map(jnp.asarray, nest(random_params(0)))
    zeros = jax.tree.map(jnp.zeros_like, p)
    updates, _ = module.update(zeros, module.init(p, hp, ctx), p, hp, ctx)
    for k, u in flatten(updates).items():
        assert bool(jnp.any(u != 0)) == WEIGHT_LIKE[k], k


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


# --- building blocks and why optax's look-alikes are not used ------------------------------------


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


def _updates(opt: optax.GradientTransformation, steps: int = 4) -> list[dict[str, np.ndarray]]:
    params = jax.tree.map(jnp.asarray, nest(random_params(0)))
    state, out = opt.init(params), []
    for g in random_grads(1, steps):
        updates, state = opt.update(jax.tree.map(jnp.asarray, nest(g)), state, params)
        params = optax.apply_updates(params, updates)
        out.append({k: np.asarray(v) for k, v in flatten(updates).items()})
    return out


def _max_rel_diff(a: list[dict], b: list[dict], keys: Any = LAYOUT) -> float:
    return max(float(np.max(np.abs(x[k] - y[k]) / (np.abs(y[k]) + 1e-30)))
               for x, y in zip(a, b) for k in keys)


def test_lars_differs_from_optax_lars_when_weight_decay_is_positive() -> None:
    """optax.lars divides by ||g + wd w||, MLPerf by ||g|| + wd ||w||; equal only for wd = 0."""
    lr = schedules.cosine(1.0, 10, 2)

    def pair(wd: float) -> tuple[list[dict], list[dict]]:
        ours = transforms.lars(lr, momentum=0.9, weight_decay=wd, trust_coefficient=0.01)
        theirs = optax.lars(lr, weight_decay=wd, trust_coefficient=0.01, momentum=0.9)
        return _updates(ours), _updates(theirs)

    assert _max_rel_diff(*pair(0.0)) < 1e-10
    assert _max_rel_diff(*pair(0.1)) > 1e-3


def test_lamb_differs_from_optax_lamb() -> None:
    """optax.lamb always bias-corrects and its mask excludes only the decay, never the trust ratio."""
    lr, mask = schedules.linear_warmup_linear_decay(0.01, 2, 10), spec.weight_mask(param_types())
    optax_lamb = _updates(optax.lamb(lr, weight_decay=0.1, mask=mask))
    pure = _updates(transforms.lamb(lr, weight_decay=0.1, mask=True))
    # Pure Algorithm 2 (bias-corrected, ratio on every tensor) is exactly optax.lamb:
    assert _max_rel_diff(pure, _updates(optax.lamb(lr, weight_decay=0.1))) < 1e-10
    excluded = _updates(transforms.lamb(lr, weight_decay=0.1, mask=mask))
    norm_or_bias = [k for k in LAYOUT if not WEIGHT_LIKE[k]]
    assert _max_rel_diff(excluded, optax_lamb, [k for k in LAYOUT if WEIGHT_LIKE[k]]) < 1e-10
    assert _max_rel_diff(excluded, optax_lamb, norm_or_bias) > 1e-3  # ratio 1 here, ||w||/||r|| in optax
    no_correction = _updates(transforms.lamb(lr, weight_decay=0.1, mask=mask, bias_correction=False))
    assert _max_rel_diff(no_correction, optax_lamb) > 1e-3


@pytest.mark.parametrize("name", ["nesterov", "momentum", "adamw", "lars", "lamb"])
def test_float32_params_stay_float32(name: str) -> None:
    jax.config.update("jax_enable_x64", False)
    module, ctx = load_submission(name), context(BUDGET)
    p = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), nest(random_params(0)))
    g = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), nest(random_grads(1, 1)[0]))
    state = module.init(p, module.DEFAULT_HPARAMS, ctx)
    updates, state = jax.jit(lambda g, s, p: module.update(g, s, p, module.DEFAULT_HPARAMS, ctx))(g, state, p)
    assert {u.dtype for u in jax.tree.leaves(updates)} == {jnp.dtype(jnp.float32)}
    assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))
