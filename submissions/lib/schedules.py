"""Learning-rate schedules as optax-style ``schedule(step) -> lr`` functions.

``step`` counts the updates already applied (0 before the first update); it may be a traced int
array, so every schedule is jittable. The rates, powers and the warmup may be traced too (harness/
spec.py, "Static and traced hyperparameters": a tuning study compiles the training step once for
all its trials), so the schedules are written in jnp without Python branches on them: ``w = 0``
(no warmup) is a jnp.where, not an ``if``. Only the schedule's span (total steps, from the
workload) is a Python int. Validation is separate: check(hparams, ctx) runs on the host with
concrete values before anything is built; the builders assume valid values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from harness import spec
from submissions.lib import valid_ranges

Schedule = Callable[[jax.Array], jax.Array]
Scalar = float | jax.Array  # a rate or a power: a Python float or a (traced) JAX scalar
Steps = int | jax.Array  # a warmup step count: a Python int or a (traced) integer-valued JAX scalar


def _check_steps(warmup_steps: float, total_steps: int, *, decay_steps: int) -> None:
    """ValueError unless 0 <= warmup_steps <= total_steps - decay_steps (and total_steps >= 1)."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    limit = total_steps - decay_steps
    if not 0 <= warmup_steps <= limit:  # also NaN
        shown = int(warmup_steps) if math.isfinite(warmup_steps) else warmup_steps
        raise ValueError(f"warmup_steps must be in [0, {limit}] for total_steps={total_steps}, "
                         f"got {shown}")


def _float_steps(step: jax.Array, warmup_steps: Steps) -> tuple[jax.Array, jax.Array]:
    """(t, w) as floats of the default float type (float64 under x64)."""
    t = jnp.asarray(step, dtype=float)
    return t, jnp.asarray(warmup_steps, dtype=t.dtype)


def _safe(w: jax.Array) -> jax.Array:
    """w where w > 0, else 1: the divisor of a warmup branch, which is never selected when w = 0
    (jnp.where evaluates both branches; this keeps the unselected one free of 0 / 0)."""
    return jnp.where(w > 0, w, 1)


def mlperf_polynomial(init: Scalar, peak: Scalar, final: Scalar, warmup_steps: Steps, total_steps: int,
                      p_warmup: Scalar = 1.0, p_decay: Scalar = 2.0) -> Schedule:
    r"""The MLPerf ResNet/LARS piecewise-polynomial schedule (Nado et al. 2021, Sec. 2.1.4).

    With w = warmup_steps, T = total_steps and d = T - w + 1 (the MLPerf reference's decay_steps)::

        lr(t) = init + (peak - init) * (t / w) ** p_warmup                        for t <= w  (w > 0)
        lr(t) = final + (peak - final) * (1 - min(t - w, d) / d) ** p_decay        otherwise

    With w = 0 there is no warmup: lr(0) = peak. Note the paper prints the decay factor as
    (T - t) / (T - w), i.e. d = T - w; the MLPerf code it reproduces uses d = T - w + 1, and so do we.
    optax.polynomial_schedule cannot express this: its warmup is linear (p_warmup = 1 only).
    Valid for 0 <= w <= T (check()).
    """
    T = int(total_steps)

    def schedule(step: jax.Array) -> jax.Array:
        t, w = _float_steps(step, warmup_steps)
        d = T - w + 1
        # (d - min(t - w, d)) / d == 1 - min(t - w, d) / d, but exact at t - w = d: XLA turns x / d
        # into x * (1 / d), and 1 - 1.00000003 < 0 would give NaN for a fractional p_decay.
        decay = final + (peak - final) * ((d - jnp.clip(t - w, 0, d)) / d) ** p_decay
        # w = 0: no warmup branch; _safe keeps it finite (t / w would be 0 / 0 at t = 0).
        warm = init + (peak - init) * (jnp.minimum(t, w) / _safe(w)) ** p_warmup
        return jnp.where((w > 0) & (t <= w), warm, decay)

    return schedule


def cosine(peak: Scalar, total_steps: int, warmup_steps: Steps = 0, final: Scalar = 0.0) -> Schedule:
    r"""Linear warmup from 0 to ``peak`` over w steps, then cosine decay to ``final`` at step T::

        lr(t) = peak * t / w                                                    for t < w
        lr(t) = final + (peak - final) * (1 + cos(pi * min(t - w, T - w) / (T - w))) / 2   for t >= w

    (both give ``peak`` at t = w). optax's warmup_cosine_decay_schedule is the same function, but
    it branches in Python on its arguments (alpha = final / peak, w = 0), so it cannot take traced
    ones; tests/test_schedules.py checks this one against the formula. Valid for 0 <= w <= T - 1.
    """
    T = int(total_steps)

    def schedule(step: jax.Array) -> jax.Array:
        t, w = _float_steps(step, warmup_steps)
        span = T - w
        # cos is bounded: an argument of pi * (1 + ulp) at t = T cannot give NaN, and 1 + cos(pi)
        # is exactly 0 in float32 and float64, so lr(T) = final exactly.
        decay = final + (peak - final) * (1 + jnp.cos(jnp.pi * jnp.clip(t - w, 0, span) / span)) / 2
        return jnp.where(t < w, peak * t / _safe(w), decay)  # t < w never holds when w = 0

    return schedule


def linear_warmup_linear_decay(peak: Scalar, warmup_steps: Steps, total_steps: int,
                               final: Scalar = 0.0) -> Schedule:
    r"""Linear warmup 0 -> peak over w steps, then linear decay peak -> final over T - w steps::

        lr(t) = peak * t / w                                          for t < w
        lr(t) = final + (peak - final) * (1 - min(t - w, T - w) / (T - w))   for t >= w

    Valid for 0 <= w <= T - 1.
    """
    T = int(total_steps)

    def schedule(step: jax.Array) -> jax.Array:
        t, w = _float_steps(step, warmup_steps)
        span = T - w
        # (span - min(t - w, span)) / span rather than 1 - min(t - w, span) / span: exactly 0 at
        # t - w = span, so lr(T) = final exactly (see mlperf_polynomial).
        decay = final + (peak - final) * ((span - jnp.clip(t - w, 0, span)) / span)
        return jnp.where(t < w, peak * t / _safe(w), decay)  # t < w never holds when w = 0

    return schedule


def bert_warmup_polynomial_decay(peak: Scalar, warmup_steps: Steps, total_steps: int,
                                 power: Scalar = 1.0, final: Scalar = 0.0) -> Schedule:
    r"""The schedule of the official BERT code (google-research/bert optimization.py), discontinuity included.

    The polynomial decay starts at step 0, not at the end of the warmup, and the warmup then
    overrides it for t < w (tf.train.polynomial_decay followed by the `is_warmup` switch)::

        decayed(t) = final + (peak - final) * (1 - min(t, T) / T) ** power
        lr(t) = peak * t / w                                          for t < w
        lr(t) = decayed(t)                                            for t >= w

    So the rate never reaches ``peak``: it climbs to peak * (w - 1) / w at t = w - 1 and then
    drops to decayed(w) ~ peak * (1 - w / T) (Nado et al. 2021, Sec. 3 and Fig. 2: for the LAMB
    32k phase 1, w = 3,125 of T = 14,063, a drop of 22% of the peak in one step). With w = 0
    there is no warmup (the BERT code's ``if num_warmup_steps:``). The BERT defaults are
    power = 1 and final = 0. Valid for 0 <= w <= T.
    """
    T = int(total_steps)

    def schedule(step: jax.Array) -> jax.Array:
        t, w = _float_steps(step, warmup_steps)
        # (T - min(t, T)) / T rather than 1 - min(t, T) / T: exact 0 at t = T (see mlperf_polynomial).
        decayed = final + (peak - final) * ((T - jnp.minimum(t, T)) / T) ** power
        return jnp.where(t < w, peak * t / _safe(w), decayed)  # t < w never holds when w = 0

    return schedule


def schedule_steps(hparams: Mapping[str, Any], ctx: spec.SubmissionContext) -> int:
    """Steps the schedule spans: the current phase's with ``restart_per_phase``, else the budget.

    With ``restart_per_phase`` the submission's next_phase re-initialises the optimizer state at
    each phase start, so the step count the schedule sees restarts at 0 (You et al. 2019's
    re-warm-up in phase 2; Nado et al. 2021 Table 8's independent schedule per phase).
    """
    return ctx.phase.steps if hparams.get("restart_per_phase", False) else ctx.step_budget


def warmup_steps(hparams: Mapping[str, Any], total_steps: int) -> Steps:
    """``hparams["warmup_steps"]`` when >= 0 (a static int: exact step counts from the papers), else
    round(warmup_fraction * total_steps). -1 (the default) means "use warmup_fraction".

    The fraction may be traced, so its warmup is computed with jnp in the default float type
    (float64 under x64) and rounded half to even as Python's round: an integer-valued JAX scalar.
    check() concretises this same computation, so the warmup it checks is the one the compiled
    schedule uses. (Under x64 it equals Python's round(warmup_fraction * total_steps); in float32
    the fraction and the product are float32, so a product within about 1e-7 (relative) of a half
    can round the other way than in Python's float64.)
    """
    steps = hparams.get("warmup_steps", -1)
    if steps >= 0:
        return int(steps)
    return jnp.round(jnp.asarray(hparams["warmup_fraction"], dtype=float) * total_steps)


#: Builds a schedule from (hparams, warmup steps, total steps); the hparams hold the entry's keys.
Build = Callable[[Mapping[str, Any], Steps, int], Schedule]


class Entry(NamedTuple):
    """A registered schedule: the hparams it needs besides the warmup (warmup_steps >= 0 or
    warmup_fraction), its builder, and the steps it needs after the warmup (warmup <= total -
    decay_steps; 1 where the decay divides by T - w)."""

    needs: tuple[str, ...]
    build: Build
    decay_steps: int = 0


#: name -> Entry. Adding a schedule is one entry here (and its default keys in DEFAULTS, if new).
SCHEDULES: dict[str, Entry] = {
    "mlperf_polynomial": Entry(
        ("learning_rate", "init_learning_rate", "final_learning_rate", "p_warmup", "p_decay"),
        lambda h, warmup, total: mlperf_polynomial(h["init_learning_rate"], h["learning_rate"],
                                                   h["final_learning_rate"], warmup, total,
                                                   h["p_warmup"], h["p_decay"])),
    "cosine": Entry(
        ("learning_rate", "final_learning_rate"),
        lambda h, warmup, total: cosine(h["learning_rate"], total, warmup, h["final_learning_rate"]),
        decay_steps=1),
    "linear": Entry(
        ("learning_rate", "final_learning_rate"),
        lambda h, warmup, total: linear_warmup_linear_decay(h["learning_rate"], warmup, total,
                                                            h["final_learning_rate"]),
        decay_steps=1),
    "bert_warmup_polynomial_decay": Entry(
        ("learning_rate", "final_learning_rate", "p_decay"),
        lambda h, warmup, total: bert_warmup_polynomial_decay(h["learning_rate"], warmup, total,
                                                              h["p_decay"], h["final_learning_rate"])),
}


#: The schedule hparams of every built-in submission, with the values of the MLPerf LARS schedule
#: (Nado et al. 2021, Sec. 2.1.4: eta_init = 0, eta_final = 1e-4, p_warmup = 1, p_decay = 2) and a
#: warmup over 15% of the schedule's span (this suite's choice; the paper's 706 steps are set with
#: warmup_steps). A submission's DEFAULT_HPARAMS is ``{**schedules.DEFAULTS, <its own keys and
#: overrides>}`` (e.g. ``"schedule": "cosine"``); every key stays, so hparams can pick any schedule.
DEFAULTS: dict[str, float | int | bool | str] = {
    "schedule": "mlperf_polynomial",
    "warmup_fraction": 0.15,
    "warmup_steps": -1,  # >= 0: exact warmup steps (the papers' counts); -1: use warmup_fraction
    "init_learning_rate": 0.0,  # mlperf_polynomial only
    "final_learning_rate": 1e-4,
    "p_warmup": 1.0,  # mlperf_polynomial only
    "p_decay": 2.0,  # mlperf_polynomial and bert_warmup_polynomial_decay
    "restart_per_phase": False,  # one schedule per phase, state reset by next_phase
}


#: The valid ranges of the numeric keys of DEFAULTS (submissions/lib/valid_ranges.py): a
#: submission's VALID_RANGES is ``{**schedules.VALID_RANGES, <its own>}``, as its DEFAULT_HPARAMS.
#: Whether a warmup fits in the schedule's span depends on the schedule and the budget: check().
VALID_RANGES: dict[str, valid_ranges.Range] = {
    "warmup_fraction": valid_ranges.FRACTION,
    "warmup_steps": valid_ranges.at_least(-1, "-1 means: use warmup_fraction"),
    "init_learning_rate": valid_ranges.LEARNING_RATE,
    "final_learning_rate": valid_ranges.LEARNING_RATE,
    "p_warmup": valid_ranges.POWER,
    "p_decay": valid_ranges.POWER,
}


def check(hparams: Mapping[str, Any], ctx: spec.SubmissionContext) -> None:
    """spec.UserError (one line) for an unknown schedule, a missing key or an invalid warmup
    (warmup_steps < -1; no warmup_fraction; a warmup outside the schedule's span).

    On the host with concrete values, before from_hparams builds the schedule (a submission's
    check_hparams calls it): the warmup is warmup_steps(hparams, total) made concrete.
    """
    name = hparams.get("schedule")
    if name not in SCHEDULES:
        raise spec.UserError(f"unknown schedule {name!r}; known schedules: "
                             f"{', '.join(sorted(SCHEDULES))}")
    entry = SCHEDULES[name]
    missing = [k for k in entry.needs if k not in hparams]
    if missing:
        raise spec.UserError(f"schedule {name!r} needs hparams {', '.join(missing)}")
    h = hparams
    steps = h.get("warmup_steps", -1)
    if steps not in VALID_RANGES["warmup_steps"]:  # for callers without the range check first
        raise spec.UserError(f"warmup_steps must be >= 0, or -1 to use warmup_fraction; got {steps}")
    if steps == -1 and "warmup_fraction" not in h:
        raise spec.UserError("the schedule needs hparams warmup_steps (>= 0) or warmup_fraction")
    total = schedule_steps(h, ctx)
    # Evaluated now even when called inside a trace (init under jax.eval_shape, as the harness
    # checks a submission): the same jnp computation as the compiled schedule's, made concrete.
    with jax.ensure_compile_time_eval():
        warmup = float(warmup_steps(h, total))
    try:
        _check_steps(warmup, total, decay_steps=entry.decay_steps)
    except ValueError as e:
        given = f"warmup_steps={steps}" if steps >= 0 else f"warmup_fraction={h['warmup_fraction']}"
        raise spec.UserError(f"schedule {name!r} with {given} over {total} steps "
                             f"({'phase ' + ctx.phase.name if h.get('restart_per_phase') else 'budget'}): "
                             f"{e}") from None


def from_hparams(hparams: Mapping[str, Any], ctx: spec.SubmissionContext) -> Schedule:
    """The schedule named by ``hparams["schedule"]`` (an entry of SCHEDULES) over
    schedule_steps(hparams, ctx) steps, with warmup_steps(hparams, total) warmup steps.

    No checks here (check() makes them on the host): the numeric hparams may be traced.
    """
    total = schedule_steps(hparams, ctx)
    schedule = SCHEDULES[hparams["schedule"]].build(hparams, warmup_steps(hparams, total), total)
    # optax counts steps in int32, and int32 / int is float32 even with x64 enabled: evaluate the
    # schedule on a float step of the default float type so a float64 run gets a float64 rate.
    return lambda step: schedule(jnp.asarray(step, dtype=float))
