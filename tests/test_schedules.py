"""Schedules against values computed by hand from the formulas in DESIGN.md / Nado et al. Sec. 2.1.4."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _submission_helpers import load_submission

from harness import spec
from harness.submission_loader import builtin_names
from submissions.lib import schedules


def lr_at(schedule: schedules.Schedule, step: int) -> float:
    return float(jax.jit(schedule)(jnp.asarray(step, jnp.int32)))


def ctx(*phase_steps: int, phase_index: int = 0) -> spec.SubmissionContext:
    """A context with one phase per entry of `phase_steps` (the budget is their sum)."""
    phases = tuple(spec.Phase(name=f"p{k}", steps=n, global_batch_size=8, micro_batch_size=8)
                   for k, n in enumerate(phase_steps))
    return spec.SubmissionContext("toy", {}, phases, phase_index)


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),
    (5, 0.25),                     # (5/10)^2: the power-2 warmup
    (8, 0.64),
    (10, 1.0),                     # boundary t = w: the peak
    (11, (90 / 91) ** 2),          # d = T - w + 1 = 91
    (55, (1 - 45 / 91) ** 2),
    (100, (1 / 91) ** 2),          # t = T: NOT yet final, because d = T - w + 1
    (101, 0.0),                    # t = T + 1 = w + d: final
    (500, 0.0),                    # held at final
])
def test_mlperf_polynomial_p_warmup_2(step: int, expected: float) -> None:
    s = schedules.mlperf_polynomial(init=0.0, peak=1.0, final=0.0, warmup_steps=10, total_steps=100,
                                    p_warmup=2.0, p_decay=2.0)
    assert lr_at(s, step) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_mlperf_polynomial_d_is_total_minus_warmup_plus_one() -> None:
    s = schedules.mlperf_polynomial(0.0, 2.0, 0.5, warmup_steps=10, total_steps=100,
                                    p_warmup=1.0, p_decay=2.0)
    with_d_91 = 0.5 + 1.5 * (1 / 91) ** 2
    assert lr_at(s, 100) == pytest.approx(with_d_91, rel=1e-6)
    assert lr_at(s, 100) != pytest.approx(0.5, rel=1e-6)  # what d = T - w (the paper's print) gives


def test_mlperf_polynomial_init_and_linear_warmup() -> None:
    s = schedules.mlperf_polynomial(0.1, 2.0, 1e-3, warmup_steps=4, total_steps=20, p_warmup=1.0, p_decay=1.0)
    assert lr_at(s, 0) == pytest.approx(0.1, rel=1e-6)
    assert lr_at(s, 1) == pytest.approx(0.1 + 1.9 * 0.25, rel=1e-6)
    assert lr_at(s, 4) == pytest.approx(2.0, rel=1e-6)
    assert lr_at(s, 5) == pytest.approx(1e-3 + (2.0 - 1e-3) * (1 - 1 / 17), rel=1e-6)


def test_mlperf_polynomial_without_warmup() -> None:
    s = schedules.mlperf_polynomial(0.0, 1.0, 0.0, warmup_steps=0, total_steps=10, p_warmup=2.0, p_decay=1.0)
    assert lr_at(s, 0) == pytest.approx(1.0)
    assert lr_at(s, 1) == pytest.approx(10 / 11, rel=1e-6)
    assert lr_at(s, 10) == pytest.approx(1 / 11, rel=1e-6)
    assert lr_at(s, 11) == pytest.approx(0.0, abs=1e-9)
    assert all(math.isfinite(lr_at(s, t)) for t in range(13))


@pytest.mark.parametrize("step, expected", [
    (0, 0.0), (5, 0.5), (10, 1.0),
    (40, 0.5 * (1 + 0.5)),         # cos(pi * 30 / 90) = 1/2
    (55, 0.5), (100, 0.0), (150, 0.0),
])
def test_cosine_with_warmup(step: int, expected: float) -> None:
    s = schedules.cosine(peak=1.0, total_steps=100, warmup_steps=10)
    assert lr_at(s, step) == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_cosine_final_and_no_warmup() -> None:
    s = schedules.cosine(peak=1.0, total_steps=100, warmup_steps=10, final=0.2)
    assert lr_at(s, 55) == pytest.approx(0.2 + 0.8 * 0.5, rel=1e-6)
    assert lr_at(s, 100) == pytest.approx(0.2, rel=1e-6)
    s0 = schedules.cosine(peak=2.0, total_steps=10, final=0.5)
    assert lr_at(s0, 0) == pytest.approx(2.0, rel=1e-6)
    assert lr_at(s0, 5) == pytest.approx(0.5 + 1.5 * 0.5, rel=1e-6)
    assert lr_at(s0, 10) == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("step, expected", [
    (0, 0.0), (5, 0.5), (10, 1.0), (55, 0.55), (100, 0.1), (130, 0.1),
])
def test_linear_warmup_linear_decay(step: int, expected: float) -> None:
    s = schedules.linear_warmup_linear_decay(peak=1.0, warmup_steps=10, total_steps=100, final=0.1)
    assert lr_at(s, step) == pytest.approx(expected, rel=1e-6)


def test_linear_without_warmup() -> None:
    s = schedules.linear_warmup_linear_decay(peak=1.0, warmup_steps=0, total_steps=10)
    assert [round(lr_at(s, t), 6) for t in (0, 3, 10)] == [1.0, 0.7, 0.0]


HP = {"learning_rate": 1.0, "warmup_fraction": 0.1, "init_learning_rate": 0.0,
      "final_learning_rate": 0.0, "p_warmup": 2.0, "p_decay": 2.0}


@pytest.mark.parametrize("name, step, expected", [
    ("mlperf_polynomial", 5, 0.25), ("mlperf_polynomial", 100, (1 / 91) ** 2),
    ("cosine", 40, 0.75), ("linear", 55, 0.5),
])
def test_from_hparams(name: str, step: int, expected: float) -> None:
    s = schedules.from_hparams({**HP, "schedule": name}, ctx(100))
    assert lr_at(s, step) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_from_hparams_rounds_warmup() -> None:
    s = schedules.from_hparams({**HP, "schedule": "linear", "warmup_fraction": 0.104}, ctx(100))
    assert lr_at(s, 10) == pytest.approx(1.0)  # round(10.4) = 10 warmup steps


def test_check_unknown_schedule_is_one_line_user_error() -> None:
    with pytest.raises(spec.UserError) as err:
        schedules.check({**HP, "schedule": "step"}, ctx(100))
    message = str(err.value)
    assert "\n" not in message and "'step'" in message
    assert all(k in message for k in ("cosine", "linear", "mlperf_polynomial",
                                      "bert_warmup_polynomial_decay"))


@pytest.mark.parametrize("hparams", [
    {k: v for k, v in {**HP, "schedule": "mlperf_polynomial"}.items() if k != "p_warmup"},
    {**HP, "schedule": "cosine", "warmup_fraction": 1.5},
    {**HP, "schedule": "linear", "warmup_fraction": 1.0},  # no decay step left
    {**HP, "schedule": "linear", "warmup_steps": 100},      # warmup_steps: the same, in steps
    {**HP, "schedule": "cosine", "warmup_steps": -2},
    {k: v for k, v in {**HP, "schedule": "cosine"}.items() if k != "warmup_fraction"},  # no warmup given
])
def test_check_invalid_is_user_error(hparams: dict) -> None:
    with pytest.raises(spec.UserError) as err:
        schedules.check(hparams, ctx(100))
    assert "\n" not in str(err.value)


# --- the registry and the shared defaults -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(schedules.SCHEDULES))
def test_every_schedule_builds_from_the_shared_defaults(name: str) -> None:
    """schedules.DEFAULTS and a learning rate hold every key of every registered schedule."""
    needs = schedules.SCHEDULES[name].needs
    assert set(needs) <= set(schedules.DEFAULTS) | {"learning_rate"}
    hp = {**schedules.DEFAULTS, "learning_rate": 1.0, "schedule": name}
    schedules.check(hp, ctx(100))
    s = schedules.from_hparams(hp, ctx(100))
    assert lr_at(s, 0) == 0.0 and 0.5 < lr_at(s, 16) <= 1.0  # warmup: round(0.15 * 100) = 15 steps


def test_a_registry_entry_is_a_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a schedule is one entry of SCHEDULES: check checks its keys, from_hparams builds it."""
    constant = schedules.Entry(("learning_rate",),
                               lambda h, warmup, total: lambda t: h["learning_rate"] + 0.0 * t)
    monkeypatch.setitem(schedules.SCHEDULES, "constant", constant)
    hp = {"schedule": "constant", "learning_rate": 0.3, "warmup_steps": 0}
    schedules.check(hp, ctx(100))
    s = schedules.from_hparams(hp, ctx(100))
    assert lr_at(s, 0) == lr_at(s, 99) == pytest.approx(0.3)
    with pytest.raises(spec.UserError, match="schedule 'constant' needs hparams learning_rate"):
        schedules.check({"schedule": "constant", "warmup_steps": 0}, ctx(100))


def test_builtin_submissions_extend_the_shared_defaults() -> None:
    """Every built-in DEFAULT_HPARAMS holds the keys of schedules.DEFAULTS with their types, and
    its schedule builds (grafted ones: under both prefixes)."""
    for name in builtin_names():
        defaults = load_submission(name).DEFAULT_HPARAMS
        prefixes = ("M.", "D.") if "M.schedule" in defaults else ("",)
        for p in prefixes:
            for key, value in schedules.DEFAULTS.items():
                assert type(defaults[p + key]) is type(value), (name, p + key)
            own = {k[len(p):]: v for k, v in defaults.items() if k.startswith(p)}
            schedules.check(own, ctx(100))
            schedules.from_hparams(own, ctx(100))


@pytest.mark.parametrize("warmup, total", [(0, 7), (3, 11), (706, 2512), (24, 160)])
def test_mlperf_polynomial_fractional_powers_stay_finite_and_in_range(warmup: int, total: int) -> None:
    s = jax.jit(jax.vmap(schedules.mlperf_polynomial(0.0, 7.05, 6e-6, warmup, total, 2.497, 1.955)))
    lrs = s(jnp.arange(total + 5))
    assert bool(jnp.all(jnp.isfinite(lrs)))
    assert float(lrs.min()) >= 0.0 and float(lrs[warmup + 1:].min()) >= 6e-6 * (1 - 1e-6)
    assert float(lrs.max()) == pytest.approx(7.05, rel=1e-6)


# --- the BERT schedule (google-research/bert optimization.py) ------------------------------------


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),
    (10, 0.5),                     # warmup: peak * t / w
    (19, 0.95),                    # last warmup step: peak * (w - 1) / w, never the peak itself
    (20, 0.8),                     # t = w: the decay that started at step 0, 1 - 20/100
    (60, 0.4),
    (100, 0.0), (150, 0.0),        # held at final = 0
])
def test_bert_warmup_polynomial_decay(step: int, expected: float) -> None:
    s = schedules.bert_warmup_polynomial_decay(peak=1.0, warmup_steps=20, total_steps=100)
    assert lr_at(s, step) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_bert_schedule_discontinuity_at_the_end_of_warmup() -> None:
    """The jump Nado et al. 2021 (Sec. 3, Fig. 2) point out, at You et al.'s LAMB 32k phase 1
    (w = 3,125 of T = 14,063): from peak * 3124/3125 to peak * (1 - 3125/14063) in one step."""
    peak, w, T = 5e-3, 3125, 14063
    s = schedules.bert_warmup_polynomial_decay(peak, w, T)
    before, at = lr_at(s, w - 1), lr_at(s, w)
    assert before == pytest.approx(peak * (w - 1) / w, rel=1e-6)
    assert at == pytest.approx(peak * (1 - w / T), rel=1e-6)
    assert (before - at) / peak == pytest.approx(w / T - 1 / w, rel=1e-5)  # a 22.2% drop
    assert 0.22 < (before - at) / peak < 0.223
    # a continuous warmup-then-decay schedule (mlperf_polynomial, p = 1) peaks at exactly `peak`:
    continuous = schedules.mlperf_polynomial(0.0, peak, 0.0, w, T, 1.0, 1.0)
    assert lr_at(continuous, w) == pytest.approx(peak, rel=1e-6)


def test_bert_schedule_power_final_and_no_warmup() -> None:
    s = schedules.bert_warmup_polynomial_decay(2.0, 0, 10, power=2.0, final=0.5)
    assert lr_at(s, 0) == pytest.approx(2.0)
    assert lr_at(s, 5) == pytest.approx(0.5 + 1.5 * 0.25, rel=1e-6)
    assert lr_at(s, 10) == pytest.approx(0.5, rel=1e-6)


# --- warmup_steps and phases ---------------------------------------------------------------------


def test_warmup_steps_overrides_warmup_fraction() -> None:
    hp = {**HP, "schedule": "mlperf_polynomial", "warmup_fraction": 0.5, "warmup_steps": 10}
    s = schedules.from_hparams(hp, ctx(100))
    assert lr_at(s, 5) == pytest.approx(0.25)          # (5/10)^2: 10 warmup steps, not 50
    assert lr_at(s, 10) == pytest.approx(1.0)
    s = schedules.from_hparams({**hp, "warmup_steps": -1}, ctx(100))  # -1: use warmup_fraction
    assert lr_at(s, 25) == pytest.approx(0.25)
    s = schedules.from_hparams({**hp, "warmup_steps": 0}, ctx(100))   # 0: no warmup at all
    assert lr_at(s, 0) == pytest.approx(1.0)


TWO_PHASES = (ctx(80, 20, phase_index=0), ctx(80, 20, phase_index=1))


@pytest.mark.parametrize("restart, phase, total", [
    (False, 0, 100), (False, 1, 100),   # one schedule over the whole budget
    (True, 0, 80), (True, 1, 20),       # one schedule per phase
])
def test_schedule_spans_budget_or_phase(restart: bool, phase: int, total: int) -> None:
    hp = {**HP, "schedule": "linear", "warmup_fraction": 0.25, "restart_per_phase": restart}
    assert schedules.schedule_steps(hp, TWO_PHASES[phase]) == total
    s = schedules.from_hparams(hp, TWO_PHASES[phase])
    w = round(0.25 * total)
    assert lr_at(s, w) == pytest.approx(1.0)
    assert lr_at(s, total) == pytest.approx(0.0, abs=1e-9)


def test_values_at_the_phase_boundary() -> None:
    """Global step 80 is the first of phase 2. Continuing, the rate goes on decaying over 100 steps;
    restarting (the optimizer's count is reset to 0 by next_phase), phase 2 re-warms from 0."""
    hp = {**HP, "schedule": "linear", "warmup_steps": 10}
    phase1, phase2 = TWO_PHASES
    cont = schedules.from_hparams(hp, phase2)
    assert lr_at(cont, 79) == pytest.approx(1 - 69 / 90, rel=1e-6)
    assert lr_at(cont, 80) == pytest.approx(1 - 70 / 90, rel=1e-6)  # no jump: same schedule
    restart = {**hp, "restart_per_phase": True}
    end_of_1 = schedules.from_hparams(restart, phase1)
    start_of_2 = schedules.from_hparams({**restart, "learning_rate": 0.5}, phase2)
    assert lr_at(end_of_1, 79) == pytest.approx(1 / 70, rel=1e-5)   # last step of a 80-step decay
    assert lr_at(start_of_2, 0) == 0.0                               # re-warm-up from zero
    assert lr_at(start_of_2, 5) == pytest.approx(0.25, rel=1e-6)     # its own peak, 0.5
    assert lr_at(start_of_2, 10) == pytest.approx(0.5, rel=1e-6)
    assert lr_at(start_of_2, 20) == pytest.approx(0.0, abs=1e-7)     # over the phase's 20 steps


def test_restart_warmup_longer_than_the_phase_is_one_line_user_error() -> None:
    hp = {**HP, "schedule": "mlperf_polynomial", "warmup_steps": 30, "restart_per_phase": True}
    schedules.check(hp, TWO_PHASES[0])
    with pytest.raises(spec.UserError) as err:
        schedules.check(hp, TWO_PHASES[1])
    message = str(err.value)
    assert "\n" not in message and "warmup_steps=30" in message and "p1" in message


# --- traced hyperparameters (harness/spec.py: one compiled step for every trial of a study) -----

TRACED_POINTS = [  # rates, powers and the warmup fraction; warmup_fraction 0 is w = 0 (no warmup)
    {"learning_rate": 1.0, "init_learning_rate": 0.0, "final_learning_rate": 1e-4, "p_warmup": 1.0,
     "p_decay": 2.0, "warmup_fraction": 0.15},
    {"learning_rate": 0.3, "init_learning_rate": 0.05, "final_learning_rate": 0.01, "p_warmup": 2.497,
     "p_decay": 1.955, "warmup_fraction": 0.3},
    {"learning_rate": 2.0, "init_learning_rate": 0.1, "final_learning_rate": 0.0, "p_warmup": 2.0,
     "p_decay": 1.0, "warmup_fraction": 0.0},
    {"learning_rate": 0.0, "init_learning_rate": 0.0, "final_learning_rate": 0.0, "p_warmup": 1.0,
     "p_decay": 1.0, "warmup_fraction": 0.05},  # peak 0: optax's cosine branched on it
]


@pytest.mark.parametrize("warmup_steps", [-1, 0, 7])  # -1: the (traced) fraction; >= 0: static steps
@pytest.mark.parametrize("name", sorted(schedules.SCHEDULES))
def test_traced_hparams_give_the_constant_schedule(name: str, warmup_steps: int) -> None:
    """Every schedule with its numeric hparams as traced float32 arguments of one jitted function
    (compiled once for all points) equals the schedule built from Python constants, is finite at
    every step (w = 0 included: no 0 / 0 selected), and check() accepts each point."""
    c = ctx(40)
    static = {"schedule": name, "warmup_steps": warmup_steps, "restart_per_phase": False}
    steps = jnp.arange(45)
    traced_fn = jax.jit(lambda h, t: jax.vmap(schedules.from_hparams({**static, **h}, c))(t))
    for point in TRACED_POINTS:
        hp = {**static, **point}
        schedules.check(hp, c)
        traced = traced_fn({k: jnp.asarray(v, jnp.float32) for k, v in point.items()}, steps)
        const = jax.jit(jax.vmap(schedules.from_hparams(hp, c)))(steps)
        assert bool(jnp.all(jnp.isfinite(traced))), point
        np.testing.assert_allclose(traced, const, rtol=1e-6, atol=1e-7, err_msg=str(point))
        w = warmup_steps if warmup_steps >= 0 else round(point["warmup_fraction"] * 40)
        if name != "bert_warmup_polynomial_decay" and point["learning_rate"] > 0:
            assert float(traced[w]) == pytest.approx(point["learning_rate"], rel=1e-6)  # the peak at t = w
    assert traced_fn._cache_size() == 1


@pytest.mark.parametrize("x64", [False, True])
def test_warmup_rounds_half_to_even_as_python(x64: bool) -> None:
    """round(warmup_fraction * T) half to even, as Python's round, traced or not: products that are
    exact halves in float32 and float64 (2.5 -> 2, 3.5 -> 4, 0.5 -> 0), near halves and whole numbers."""
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", x64)
    try:
        cases = [(0.25, 10), (0.35, 10), (0.125, 20), (0.375, 20), (0.05, 10), (0.15, 117),
                 (0.104, 100), (0.2, 2512), (0.0, 50), (1.0, 50), (0.5, 5), (0.5, 7)]
        traced = jax.jit(lambda f, total: schedules.warmup_steps({"warmup_fraction": f}, total),
                         static_argnums=1)
        for f, total in cases:
            concrete = schedules.warmup_steps({"warmup_fraction": f}, total)
            assert int(concrete) == round(f * total), (f, total)
            assert int(traced(jnp.asarray(f, dtype=float), total)) == round(f * total), (f, total)
        assert schedules.warmup_steps({"warmup_fraction": 0.5, "warmup_steps": 3}, 10) == 3  # static
    finally:
        jax.config.update("jax_enable_x64", previous)


def test_check_warmup_message() -> None:
    with pytest.raises(spec.UserError) as err:
        schedules.check({**HP, "schedule": "cosine", "warmup_fraction": 1.5}, ctx(100))
    assert str(err.value) == ("schedule 'cosine' with warmup_fraction=1.5 over 100 steps (budget): "
                              "warmup_steps must be in [0, 99] for total_steps=100, got 150")
    with pytest.raises(spec.UserError, match="warmup_steps must be >= 0, or -1 to use warmup_fraction; got -2"):
        schedules.check({**HP, "schedule": "linear", "warmup_steps": -2}, ctx(100))
