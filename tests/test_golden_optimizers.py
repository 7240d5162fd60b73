"""Each submission's update against an independent plain-numpy float64 implementation of its reference.

The references below are written from the formulas (Nado et al. 2021 Sec. 2.1; You et al. 2019
Algorithm 2; MLPerf LARS and BERT AdamWeightDecay as in DESIGN.md "Numerical references"; plain SGD
and Duchi et al. 2011's diagonal AdaGrad as in the submissions' docstrings), not from the code under
test. Multi-phase runs: the submission's next_phase at each phase start, against a reference that
keeps or resets its state and step count (restart_per_phase).
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
    SUBMISSIONS,
    assert_check_refuses,
    context,
    flatten,
    load_submission,
    nest,
    param_types,
    random_grads,
    random_params,
    x64_mode,
)

from harness import spec
from submissions.lib import schedules, transforms

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


def norm(x: np.ndarray) -> float:
    return float(np.sqrt(np.sum(x * x)))


def ref_sgd(hp: dict, nesterov: bool) -> Callable:
    """g = grad + lambda w (weights only); mu = 0: -lr g; else v = mu v + g and -lr v (heavy ball)
    or -lr (mu v + g) (Nesterov)."""
    def step(t: int, lr: float, w: dict, g: dict, s: dict) -> dict:
        mu, out = hp["momentum"], {}
        for k in w:
            gk = g[k] + hp["weight_decay"] * w[k] if WEIGHT_LIKE[k] else g[k]
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
        decay = {k: hp["weight_decay"] * w[k] if WEIGHT_LIKE[k] else 0.0 for k in w}
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
    "lars": ref_lars,
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


# --- golden tests ---------------------------------------------------------------------------------

SGD_HP = {"init_learning_rate": 0.05, "final_learning_rate": 0.01, "weight_decay": 0.05}


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


ADAGRAD_HP = {"init_learning_rate": 0.05, "final_learning_rate": 0.01}


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


# --- grad_clip_norm: global-norm clipping before adamw / lamb (the BERT code's clip, 1.0) ----------


def bert_grads() -> list[dict[str, np.ndarray]]:
    """Gradients whose global norm is above the clip threshold 1.0 on even steps (x10) and below
    it on odd steps (x0.3), so both branches of clip_by_global_norm are exercised."""
    grads = random_grads(1, STEPS)
    return [{k: (10.0 if t % 2 == 0 else 0.3) * v for k, v in g.items()} for t, g in enumerate(grads)]


def global_norms(grads: list[dict[str, np.ndarray]]) -> list[float]:
    return [math.sqrt(sum(float(np.sum(v * v)) for v in g.values())) for g in grads]


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
    assert _max_rel_diff(got[1:], unclipped[1:]) > 1e-3


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


# --- phases: next_phase keeps or restarts the state ----------------------------------------------

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
