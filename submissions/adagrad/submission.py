r"""AdaGrad (Duchi et al. 2011), diagonal, with L2 on weight-like parameters only.

    g_t     = grad l(w_t) + lambda * w_t       (lambda on weights only)
    a_t     = a_{t-1} + g_t^2,                 a_0 = initial_accumulator_value
    w_{t+1} = w_t - eta_t * g_t / sqrt(a_t + eps)      (0 where a_t = 0)

optax.add_decayed_weights (masked), optax.scale_by_rss, optax.scale_by_learning_rate: optax.adagrad
with the decay mask. eta_t: hparams["schedule"], MLPerf polynomial by default. Grafting's D in
SGD#AdaGrad (Agarwal et al. Sec. 4-5).
"""

from __future__ import annotations

import optax

from harness import spec
from submissions.lib import protocol, schedules, valid_ranges

DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {
    **schedules.DEFAULTS,
    "learning_rate": 0.1,
    "initial_accumulator_value": 0.1,
    "eps": 1e-7,
    "weight_decay": 0.0,
}

#: Where the update rule is defined (submissions/lib/valid_ranges.py).
VALID_RANGES: valid_ranges.Ranges = {
    **schedules.VALID_RANGES,
    "learning_rate": valid_ranges.LEARNING_RATE,
    "initial_accumulator_value": valid_ranges.at_least(0.0, "a_0: the sum of squared gradients starts here"),
    "eps": valid_ranges.GUARDED_EPS,  # sqrt(a_t + eps) with a_t = 0 is skipped (0 there)
    "weight_decay": valid_ranges.WEIGHT_DECAY,
}

#: No float changes the program (initial_accumulator_value only fills the state, in init).
STATIC_HPARAMS: frozenset[str] = frozenset()


def optimizer(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> optax.GradientTransformation:
    """The optax transformation of the docstring's update rule."""
    return optax.chain(
        optax.add_decayed_weights(hparams["weight_decay"], spec.weight_mask(ctx.param_types)),
        optax.scale_by_rss(hparams["initial_accumulator_value"], hparams["eps"]),
        optax.scale_by_learning_rate(schedules.from_hparams(hparams, ctx)),
    )


def check(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> None:
    """spec.UserError (one line) for a bad schedule (schedules.check)."""
    schedules.check(hparams, ctx)


init, update, next_phase, check_hparams = protocol.from_optax(optimizer, check, "adagrad", VALID_RANGES)
