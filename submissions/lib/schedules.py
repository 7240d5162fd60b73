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


_NEEDS: dict[str, tuple[str, ...]] = {
    "mlperf_polynomial": ("learning_rate", "warmup_fraction", "init_learning_rate",
                          "final_learning_rate", "p_warmup", "p_decay"),
    "cosine": ("learning_rate", "warmup_fraction", "final_learning_rate"),
    "linear": ("learning_rate", "warmup_fraction", "final_learning_rate"),
}


def from_hparams(hparams: Mapping[str, Any], total_steps: int) -> Schedule:
    """The schedule named by ``hparams["schedule"]``; warmup = round(warmup_fraction * total_steps).

    Raises spec.UserError (one line) for an unknown schedule, a missing key or an invalid warmup.
    """
    name = hparams.get("schedule")
    if name not in _NEEDS:
        raise spec.UserError(f"unknown schedule {name!r}; known schedules: {', '.join(sorted(_NEEDS))}")
    missing = [k for k in _NEEDS[name] if k not in hparams]
    if missing:
        raise spec.UserError(f"schedule {name!r} needs hparams {', '.join(missing)}")
    h = hparams
    warmup = int(round(float(h["warmup_fraction"]) * total_steps))
    try:
        if name == "mlperf_polynomial":
            schedule = mlperf_polynomial(h["init_learning_rate"], h["learning_rate"],
                                         h["final_learning_rate"], warmup, total_steps, h["p_warmup"],
                                         h["p_decay"])
        elif name == "cosine":
            schedule = cosine(h["learning_rate"], total_steps, warmup, h["final_learning_rate"])
        else:
            schedule = linear_warmup_linear_decay(h["learning_rate"], warmup, total_steps,
                                                  h["final_learning_rate"])
    except ValueError as e:
        raise spec.UserError(f"schedule {name!r} with warmup_fraction={h['warmup_fraction']}: {e}") from e
    # optax counts steps in int32, and int32 / int is float32 even with x64 enabled: evaluate the
    # schedule on a float step of the default float type so a float64 run gets a float64 rate.
    return lambda step: schedule(jnp.asarray(step, dtype=float))
