"""The golden tests' machinery: plain-numpy float64 references of each submission's update rule,
and the runners that feed a submission and its reference the same parameters and gradients.

The references are written from the formulas (Nado et al. 2021 Sec. 2.1; You et al. 2019
Algorithms 1 and 2; MLPerf LARS and BERT AdamWeightDecay as in DESIGN.md "Numerical references";
plain SGD and Duchi et al. 2011's diagonal AdaGrad as in the submissions' docstrings), not from the
code under test. Multi-phase runs: the submission's next_phase at each phase start, against a
reference that keeps or resets its state and step count (restart_per_phase). The tests are split
by optimizer family: tests/test_golden_<family>.py.
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
from _submission_helpers import (
    LAYOUT,
    flatten,
    load_submission,
    nest,
    param_types,
    random_grads,
    random_params,
    x64_mode,
)

from harness import spec

STEPS = 8
BUDGET = 12  # warmup round(0.25 * 12) = 3 steps, so the 8 steps cover warmup, peak and decay
RTOL, ATOL = 1e-6, 1e-12
WEIGHT_LIKE = {name: spec.is_weight_like(t) for name, (_, t) in LAYOUT.items()}


@pytest.fixture(autouse=True)
def x64() -> Iterator[None]:
    with x64_mode(True):
        yield


# --- numpy references ---------------------------------------------------------------------------


def np_schedule(hp: dict[str, Any], t: int, total: int = BUDGET) -> float:
    w = hp["warmup_steps"] if hp.get("warmup_steps", -1) >= 0 else int(round(hp["warmup_fraction"] * total))
    peak, final = hp["learning_rate"], hp["final_learning_rate"]
    if hp["schedule"] == "bert_warmup_polynomial_decay":  # decays from step 0; warmup overrides it
        if t < w:
            return peak * t / w
        return final + (peak - final) * (1 - min(t, total) / total) ** hp["p_decay"]
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


def decayed(hp: dict, k: str) -> bool:
    """Whether L2 / weight decay applies to parameter k: weight-like tensors only, or every tensor
    with exclude_norm_and_bias False (Nado et al. Fig. 4 "L2 variables")."""
    return WEIGHT_LIKE[k] or not hp.get("exclude_norm_and_bias", True)


def norm(x: np.ndarray) -> float:
    return float(np.sqrt(np.sum(x * x)))


def ref_sgd(hp: dict, nesterov: bool) -> Callable:
    """g = grad + lambda w (weights only, or every tensor: `decayed`); mu = 0: -lr g; else
    v = mu v + g and -lr v (heavy ball) or -lr (mu v + g) (Nesterov)."""
    def step(t: int, lr: float, w: dict, g: dict, s: dict) -> dict:
        mu, out = hp["momentum"], {}
        for k in w:
            gk = g[k] + hp["weight_decay"] * w[k] if decayed(hp, k) else g[k]
            if mu == 0:
                out[k] = -lr * gk
                continue
            s[k] = mu * s.get(k, 0.0) + gk
            out[k] = -lr * (mu * s[k] + gk) if nesterov else -lr * s[k]
        return out
    return step


def ref_adagrad(hp: dict) -> Callable:
    """Duchi et al. 2011, diagonal: g = grad + lambda w (weights only), a = a + g^2 from
    a_0 = initial_accumulator_value, -lr g / sqrt(a + eps), and 0 where a = 0."""
    def step(t: int, lr: float, w: dict, g: dict, s: dict) -> dict:
        out = {}
        for k in w:
            gk = g[k] + hp["weight_decay"] * w[k] if WEIGHT_LIKE[k] else g[k]
            s[k] = s.get(k, hp["initial_accumulator_value"]) + gk * gk
            with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 where a = 0 and eps = 0
                out[k] = np.where(s[k] > 0, -lr * gk / np.sqrt(s[k] + hp["eps"]), 0.0)
        return out
    return step


def np_clip_by_global_norm(hp: dict, g: dict) -> dict:
    """tf.clip_by_global_norm(g, c) for c = hp["grad_clip_norm"] > 0: g * c / max(||g||_2, c), the
    norm over all tensors at once; g itself when c is 0 or absent."""
    c = hp.get("grad_clip_norm", 0.0)
    if c == 0:
        return g
    global_norm = math.sqrt(sum(float(np.sum(gk * gk)) for gk in g.values()))
    return {k: gk * (c / max(global_norm, c)) for k, gk in g.items()}


def adam_direction(hp: dict, t: int, g: np.ndarray, s: dict, k: str,
                   bias_correction: bool | None = None) -> np.ndarray:
    b1, b2 = hp["b1"], hp["b2"]
    if bias_correction is None:
        bias_correction = hp["bias_correction"]
    s[k + "/m"] = b1 * s.get(k + "/m", 0.0) + (1 - b1) * g
    s[k + "/v"] = b2 * s.get(k + "/v", 0.0) + (1 - b2) * g * g
    m, v = s[k + "/m"], s[k + "/v"]
    if bias_correction:
        m, v = m / (1 - b1 ** (t + 1)), v / (1 - b2 ** (t + 1))
    return m / (np.sqrt(v) + hp["eps"])


def ref_adamw(hp: dict) -> Callable:
    def step(t: int, lr: float, w: dict, g: dict, s: dict) -> dict:
        g = np_clip_by_global_norm(hp, g)
        decay = {k: hp["weight_decay"] * w[k] if decayed(hp, k) else 0.0 for k in w}
        return {k: -lr * (adam_direction(hp, t, g[k], s, k) + decay[k]) for k in w}
    return step


def ref_lamb(hp: dict) -> Callable:
    def step(t: int, lr: float, w: dict, g: dict, s: dict) -> dict:
        g, out = np_clip_by_global_norm(hp, g), {}
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
    def step(t: int, lr: float, w: dict, g: dict, s: dict) -> dict:
        wd, out = hp["weight_decay"], {}
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


def ref_lars_you2019(hp: dict) -> Callable:
    """You et al. 2019 Algorithm 1 with phi(z) = z: m_t = b1 m_{t-1} + (1 - b1)(g_t + lambda x_t),
    x_{t+1} = x_t - eta_t ||x_t|| / ||m_t|| m_t per layer (ratio 1 where a norm is 0); on BN/bias
    with exclude_norm_and_bias: m_t = b1 m_{t-1} + (1 - b1) g_t, x_{t+1} = x_t - eta_t m_t."""
    def step(t: int, lr: float, w: dict, g: dict, s: dict) -> dict:
        b1, wd, out = hp["momentum"], hp["weight_decay"], {}
        for k in w:
            layerwise = WEIGHT_LIKE[k] or not hp["exclude_norm_and_bias"]
            s[k] = b1 * s.get(k, 0.0) + (1 - b1) * (g[k] + wd * w[k] if layerwise else g[k])
            ratio = 1.0
            if layerwise and norm(w[k]) > 0 and norm(s[k]) > 0:
                ratio = norm(w[k]) / norm(s[k])
            out[k] = -lr * ratio * s[k]
        return out
    return step


def ref_bert_adamw(hp: dict) -> Callable:
    """google-research/bert optimization.py: clip_by_global_norm(grads, 1.0), then
    AdamWeightDecayOptimizer: no bias correction, update += wd * w (not LayerNorm/bias), w -= lr * update."""
    def step(t: int, lr: float, w: dict, g: dict, s: dict) -> dict:
        g, out = np_clip_by_global_norm(hp, g), {}
        for k in w:
            update = adam_direction(hp, t, g[k], s, k, bias_correction=False)
            if WEIGHT_LIKE[k]:
                update = update + hp["weight_decay"] * w[k]
            out[k] = -lr * update
        return out
    return step


REFERENCES: dict[str, Callable[[dict], Callable]] = {
    "sgd": lambda hp: ref_sgd(hp, nesterov=hp["nesterov"]),
    "adagrad": ref_adagrad,
    "nesterov": lambda hp: ref_sgd(hp, nesterov=True),
    "momentum": lambda hp: ref_sgd(hp, nesterov=False),
    "adamw": ref_adamw,
    "lamb": ref_lamb,
    "lars": lambda hp: ref_lars_you2019(hp) if hp.get("variant") == "you2019" else ref_lars(hp),
    "bert_adamw": ref_bert_adamw,
}


# --- running the submission and the reference side by side ---------------------------------------


def phase_contexts(phase_steps: tuple[int, ...]) -> list[spec.SubmissionContext]:
    """One context per phase of a workload whose phases have `phase_steps` steps, as the harness
    builds them: the same budget and phases, phase_index = k."""
    phases = tuple(spec.Phase(name=f"phase{k + 1}", steps=n, global_batch_size=8, micro_batch_size=8)
                   for k, n in enumerate(phase_steps))
    return [spec.SubmissionContext("golden", param_types(), phases, k)
            for k in range(len(phases))]


def run_submission_phases(name: str, hps: list[dict], params: dict, grads: list[list[dict]]
                          ) -> list[dict[str, np.ndarray]]:
    """Flat float64 updates of each step of each phase (grads[k] holds phase k's gradients), params
    advanced by the harness rule params + updates, next_phase called at each phase start after the
    first with that phase's hparams and ctx (as harness/runner.py does)."""
    module = load_submission(name)
    contexts = phase_contexts(tuple(len(g) for g in grads))
    p = jax.tree.map(jnp.asarray, nest(params))
    state, out = module.init(p, hps[0], contexts[0]), []
    for k, (hp, ctx) in enumerate(zip(hps, contexts)):
        if k > 0:
            state = module.next_phase(state, p, hp, ctx)
        step = jax.jit(lambda g, s, p, hp=hp, ctx=ctx: module.update(g, s, p, hp, ctx))
        for g in grads[k]:
            updates, state = step(jax.tree.map(jnp.asarray, nest(g)), state, p)
            assert all(u.dtype == jnp.float64 for u in jax.tree.leaves(updates))
            p = jax.tree.map(lambda a, b: a + b, p, updates)
            out.append({key: np.asarray(v) for key, v in flatten(updates).items()})
    return out


def run_reference_phases(name: str, hps: list[dict], params: dict, grads: list[list[dict]]
                         ) -> list[dict[str, np.ndarray]]:
    """The reference over phases: with restart_per_phase a phase starts from an empty state and
    step count 0 and its schedule spans the phase; otherwise state, count and schedule (over the
    whole budget) carry on."""
    budget = sum(len(g) for g in grads)
    w, state, t, out = {k: v.copy() for k, v in params.items()}, {}, 0, []
    for k, hp in enumerate(hps):
        restart = hp.get("restart_per_phase", False)
        if k > 0 and restart:
            state, t = {}, 0
        step, total = REFERENCES[name](hp), len(grads[k]) if restart else budget
        for g in grads[k]:
            updates = step(t, np_schedule(hp, t, total), w, g, state)
            w = {key: w[key] + updates[key] for key in w}
            out.append(updates)
            t += 1
    return out


def run_submission(name: str, hp: dict, params: dict, grads: list[dict]) -> list[dict[str, np.ndarray]]:
    return run_submission_phases(name, [hp], params, [grads])


def run_reference(name: str, hp: dict, params: dict, grads: list[dict]) -> list[dict[str, np.ndarray]]:
    return run_reference_phases(name, [hp], params, [grads])


def assert_matches(name: str, overrides: dict, *, zero_params: tuple[str, ...] = (),
                   zero_grads: tuple[tuple[int, str], ...] = (),
                   grads: list[dict[str, np.ndarray]] | None = None) -> list[dict[str, np.ndarray]]:
    module = load_submission(name)
    hp = {**module.DEFAULT_HPARAMS, "warmup_fraction": 0.25, **overrides}
    params = random_params(0, zero_params)
    grads = random_grads(1, STEPS, zero_grads) if grads is None else grads
    got, want = run_submission(name, hp, params, grads), run_reference(name, hp, params, grads)
    lrs = {np_schedule(hp, t) for t in range(STEPS)}
    assert len(lrs) >= 5, "the schedule must change over the test steps"
    for t in range(STEPS):
        for k in LAYOUT:
            np.testing.assert_allclose(got[t][k], want[t][k], rtol=RTOL, atol=ATOL,
                                       err_msg=f"{name} step {t} {k}")
    return got



# --- shared hyperparameters and gradients of several families' tests ------------------------------

SGD_HP = {"init_learning_rate": 0.05, "final_learning_rate": 0.01, "weight_decay": 0.05}
ADAGRAD_HP = {"init_learning_rate": 0.05, "final_learning_rate": 0.01}


def bert_grads() -> list[dict[str, np.ndarray]]:
    """Gradients whose global norm is above the clip threshold 1.0 on even steps (x10) and below
    it on odd steps (x0.3), so both branches of clip_by_global_norm are exercised."""
    grads = random_grads(1, STEPS)
    return [{k: (10.0 if t % 2 == 0 else 0.3) * v for k, v in g.items()} for t, g in enumerate(grads)]


def global_norms(grads: list[dict[str, np.ndarray]]) -> list[float]:
    return [math.sqrt(sum(float(np.sum(v * v)) for v in g.values())) for g in grads]



def optax_updates(opt: optax.GradientTransformation, steps: int = 4) -> list[dict[str, np.ndarray]]:
    params = jax.tree.map(jnp.asarray, nest(random_params(0)))
    state, out = opt.init(params), []
    for g in random_grads(1, steps):
        updates, state = opt.update(jax.tree.map(jnp.asarray, nest(g)), state, params)
        params = optax.apply_updates(params, updates)
        out.append({k: np.asarray(v) for k, v in flatten(updates).items()})
    return out


def max_rel_diff(a: list[dict], b: list[dict], keys: Any = LAYOUT) -> float:
    return max(float(np.max(np.abs(x[k] - y[k]) / (np.abs(y[k]) + 1e-30)))
               for x, y in zip(a, b) for k in keys)


def assert_same_updates_bit_for_bit(module: Any, before: optax.GradientTransformation, hp: dict,
                                    ctx: spec.SubmissionContext) -> None:
    """The submission's updates equal, bit for bit, those of `before` (the transformation it built
    before an option existed) over 4 steps of random gradients from the same random params."""
    p = jax.tree.map(jnp.asarray, nest(random_params(0)))
    s_now, s_before = module.init(p, hp, ctx), before.init(p)
    for g in random_grads(1, 4):
        g = jax.tree.map(jnp.asarray, nest(g))
        (u_now, s_now), (u_before, s_before) = module.update(g, s_now, p, hp, ctx), before.update(g, s_before, p)
        for x, y in zip(jax.tree.leaves(u_now), jax.tree.leaves(u_before), strict=True):
            np.testing.assert_array_equal(x, y)
        p = jax.tree.map(lambda a, b: a + b, p, u_now)
