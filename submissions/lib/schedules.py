"""Learning-rate schedules as optax-style ``schedule(step) -> lr`` functions.

``step`` counts the updates already applied (0 before the first update); it may be a traced int
array, so every schedule is jittable. Step counts that shape a schedule (warmup, total) are Python
ints, so the only branching on them happens once, when the schedule is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from harness import spec

Schedule = Callable[[jax.Array], jax.Array]


def _check_steps(warmup_steps: int, total_steps: int, *, decay_needed: bool) -> None:
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    limit = total_steps - 1 if decay_needed else total_steps
    if not 0 <= warmup_steps <= limit:
        raise ValueError(f"warmup_steps must be in [0, {limit}] for total_steps={total_steps}, "
                         f"got {warmup_steps}")


def mlperf_polynomial(init: float, peak: float, final: float, warmup_steps: int, total_steps: int,
                      p_warmup: float = 1.0, p_decay: float = 2.0) -> Schedule:
    r"""The MLPerf ResNet/LARS piecewise-polynomial schedule (Nado et al. 2021, Sec. 2.1.4).

    With w = warmup_steps, T = total_steps and d = T - w + 1 (the MLPerf reference's decay_steps)::

        lr(t) = init + (peak - init) * (t / w) ** p_warmup                        for t <= w
        lr(t) = final + (peak - final) * (1 - min(t - w, d) / d) ** p_decay        for t > w

    With w = 0 there is no warmup: lr(0) = peak. Note the paper prints the decay factor as
    (T - t) / (T - w), i.e. d = T - w; the MLPerf code it reproduces uses d = T - w + 1, and so do we.
    optax.polynomial_schedule cannot express this: its warmup is linear (p_warmup = 1 only).
    """
    _check_steps(warmup_steps, total_steps, decay_needed=False)
    w, d = int(warmup_steps), int(total_steps) - int(warmup_steps) + 1

    def schedule(step: jax.Array) -> jax.Array:
        t = jnp.asarray(step, dtype=float)
        # (d - min(t - w, d)) / d == 1 - min(t - w, d) / d, but exact at t - w = d: XLA turns x / d
        # into x * (1 / d), and 1 - 1.00000003 < 0 would give NaN for a fractional p_decay.
        decay = final + (peak - final) * ((d - jnp.clip(t - w, 0, d)) / d) ** p_decay
        if w == 0:  # static: no warmup branch (t / w would be 0 / 0 at t = 0)
            return decay
        warm = init + (peak - init) * (jnp.minimum(t, w) / w) ** p_warmup
        return jnp.where(t <= w, warm, decay)

    return schedule


def cosine(peak: float, total_steps: int, warmup_steps: int = 0, final: float = 0.0) -> Schedule:
    r"""Linear warmup from 0 to ``peak`` over w steps, then cosine decay to ``final`` at step T::

        lr(t) = peak * t / w                                                    for t <= w
        lr(t) = final + (peak - final) * (1 + cos(pi * min(t - w, T - w) / (T - w))) / 2   for t > w

    optax's warmup_cosine_decay_schedule is exactly this (its end_value/peak_value alpha gives the
    same affine form); tests/test_schedules.py checks it against the formula.
    """
    _check_steps(warmup_steps, total_steps, decay_needed=True)
    if warmup_steps == 0:
        alpha = final / peak if peak != 0 else 0.0
        return optax.cosine_decay_schedule(peak, total_steps, alpha=alpha)
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup_steps, total_steps, end_value=final)


def linear_warmup_linear_decay(peak: float, warmup_steps: int, total_steps: int,
                               final: float = 0.0) -> Schedule:
    r"""Linear warmup 0 -> peak over w steps, then linear decay peak -> final over T - w steps::

        lr(t) = peak * t / w                                          for t <= w
        lr(t) = final + (peak - final) * (1 - min(t - w, T - w) / (T - w))   for t > w
    """
    _check_steps(warmup_steps, total_steps, decay_needed=True)
    decay = optax.linear_schedule(peak, final, total_steps - warmup_steps)
    if warmup_steps == 0:
        return decay
    warm = optax.linear_schedule(0.0, peak, warmup_steps)
    return optax.join_schedules([warm, decay], [warmup_steps])


def bert_warmup_polynomial_decay(peak: float, warmup_steps: int, total_steps: int,
                                 power: float = 1.0, final: float = 0.0) -> Schedule:
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
    power = 1 and final = 0.
    """
    _check_steps(warmup_steps, total_steps, decay_needed=False)
    w, T = int(warmup_steps), int(total_steps)

    def schedule(step: jax.Array) -> jax.Array:
        t = jnp.asarray(step, dtype=float)
        # (T - min(t, T)) / T rather than 1 - min(t, T) / T: exact 0 at t = T (see mlperf_polynomial).
        decayed = final + (peak - final) * ((T - jnp.minimum(t, T)) / T) ** power
        if w == 0:  # static: no warmup branch
            return decayed
        return jnp.where(t < w, peak * t / w, decayed)

    return schedule


def schedule_steps(hparams: Mapping[str, Any], ctx: spec.SubmissionContext) -> int:
    """Steps the schedule spans: the current phase's with ``restart_per_phase``, else the budget.

    With ``restart_per_phase`` the submission's next_phase re-initialises the optimizer state at
    each phase start, so the step count the schedule sees restarts at 0 (You et al. 2019's
    re-warm-up in phase 2; Nado et al. 2021 Table 8's independent schedule per phase).
    """
    return ctx.phase.steps if hparams.get("restart_per_phase", False) else ctx.step_budget


def warmup_steps(hparams: Mapping[str, Any], total_steps: int) -> int:
    """``hparams["warmup_steps"]`` when >= 0 (exact step counts from the papers), else
    round(warmup_fraction * total_steps). -1 (the default) means "use warmup_fraction"."""
    steps = hparams.get("warmup_steps", -1)
    if steps < -1:
        raise spec.UserError(f"warmup_steps must be >= 0, or -1 to use warmup_fraction; got {steps}")
    if steps >= 0:
        return int(steps)
    if "warmup_fraction" not in hparams:
        raise spec.UserError("the schedule needs hparams warmup_steps (>= 0) or warmup_fraction")
    return int(round(float(hparams["warmup_fraction"]) * total_steps))


#: Builds a schedule from (hparams, warmup steps, total steps); the hparams hold the entry's keys.
Build = Callable[[Mapping[str, Any], int, int], Schedule]

#: name -> (the hparams it needs besides the warmup (warmup_steps >= 0 or warmup_fraction), builder).
#: Adding a schedule is one entry here (and its default keys in DEFAULTS, if new).
SCHEDULES: dict[str, tuple[tuple[str, ...], Build]] = {
    "mlperf_polynomial": (
        ("learning_rate", "init_learning_rate", "final_learning_rate", "p_warmup", "p_decay"),
        lambda h, warmup, total: mlperf_polynomial(h["init_learning_rate"], h["learning_rate"],
                                                   h["final_learning_rate"], warmup, total,
                                                   h["p_warmup"], h["p_decay"])),
    "cosine": (
        ("learning_rate", "final_learning_rate"),
        lambda h, warmup, total: cosine(h["learning_rate"], total, warmup, h["final_learning_rate"])),
    "linear": (
        ("learning_rate", "final_learning_rate"),
        lambda h, warmup, total: linear_warmup_linear_decay(h["learning_rate"], warmup, total,
                                                            h["final_learning_rate"])),
    "bert_warmup_polynomial_decay": (
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


def from_hparams(hparams: Mapping[str, Any], ctx: spec.SubmissionContext) -> Schedule:
    """The schedule named by ``hparams["schedule"]`` (an entry of SCHEDULES) over
    schedule_steps(hparams, ctx) steps, with warmup_steps(hparams, total) warmup steps.

    Raises spec.UserError (one line) for an unknown schedule, a missing key or an invalid warmup.
    """
    name = hparams.get("schedule")
    if name not in SCHEDULES:
        raise spec.UserError(f"unknown schedule {name!r}; known schedules: "
                             f"{', '.join(sorted(SCHEDULES))}")
    needs, build = SCHEDULES[name]
    missing = [k for k in needs if k not in hparams]
    if missing:
        raise spec.UserError(f"schedule {name!r} needs hparams {', '.join(missing)}")
    h = hparams
    total = schedule_steps(h, ctx)
    warmup = warmup_steps(h, total)
    try:
        schedule = build(h, warmup, total)
    except ValueError as e:
        given = (f"warmup_steps={h['warmup_steps']}" if h.get("warmup_steps", -1) >= 0
                 else f"warmup_fraction={h['warmup_fraction']}")
        raise spec.UserError(f"schedule {name!r} with {given} over {total} steps "
                             f"({'phase ' + ctx.phase.name if h.get('restart_per_phase') else 'budget'}): "
                             f"{e}") from e
    # optax counts steps in int32, and int32 / int is float32 even with x64 enabled: evaluate the
    # schedule on a float step of the default float type so a float64 run gets a float64 rate.
    return lambda step: schedule(jnp.asarray(step, dtype=float))
