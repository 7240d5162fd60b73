r"""Plain SGD, momentum optional (0 by default), L2 on weight-like parameters only.

    g_t     = grad l(w_t) + lambda * w_t       (lambda on weights only: no BN/LN scale/offset, no bias;
                                                on every tensor with exclude_norm_and_bias=False,
                                                submissions/lib/masks.py)
    v_t     = mu * v_{t-1} + g_t,              v_0 = 0
    w_{t+1} = w_t - eta_t * v_t                (w_t - eta_t * (mu * v_t + g_t) if nesterov)
    momentum mu = 0:   v_t = g_t, so  w_{t+1} = w_t - eta_t * g_t  (plain SGD)

optax.add_decayed_weights (masked) then optax.sgd with a momentum trace, mu in [0, 1) (VALID_RANGES:
mu >= 1 never forgets a gradient, the buffer grows without bound). The buffer
v is kept for every mu, 0 included: mu is a traced hyperparameter (a tuning study searches
{0.0, 0.9} with one compiled step), so the state's structure cannot depend on it. With mu = 0,
v_t = g_t + 0 * v_{t-1} = g_t exactly (for finite v_{t-1}), and the parameters are bit-identical
to those of plain SGD without a buffer (tests/test_traced_hparams.py checks it over several
steps); only the memory of one buffer is spent.
eta_t: hparams["schedule"] (submissions/lib/schedules.py), MLPerf polynomial by default. The
direction of choice for grafting (Adam#SGD, Agarwal et al. Sec. 4).

``optimizer``, ``VALID_RANGES`` and ``check`` are the builder, the valid ranges and the checks of
the whole SGD family: the momentum and nesterov submissions are this update rule with nesterov
fixed (and their own defaults), sgd_corrected scales its steps.
"""

from __future__ import annotations

import optax

from harness import spec
from submissions.lib import masks, protocol, schedules, valid_ranges

DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {
    **schedules.DEFAULTS,
    "learning_rate": 0.5,
    "momentum": 0.0,
    "nesterov": False,
    "weight_decay": 0.0,
    "exclude_norm_and_bias": True,  # False: L2 on every tensor (Nado et al. Fig. 4 "L2 variables")
}

#: Where the update rule is defined (submissions/lib/valid_ranges.py); nesterov is a bool.
VALID_RANGES: valid_ranges.Ranges = {
    **schedules.VALID_RANGES,
    "learning_rate": valid_ranges.LEARNING_RATE,
    "momentum": valid_ranges.DECAY,
    "weight_decay": valid_ranges.WEIGHT_DECAY,
}

#: No float changes the program: momentum is traced, the buffer is kept for every value.
STATIC_HPARAMS: frozenset[str] = frozenset()


def optimizer(hparams: spec.Hparams, ctx: spec.SubmissionContext, *, nesterov: bool | None = None
              ) -> optax.GradientTransformation:
    """The optax transformation of the docstring's update rule; ``nesterov`` (when given) in place
    of ``hparams["nesterov"]``, for the submissions that fix it and have no such hparam."""
    return optax.chain(
        optax.add_decayed_weights(hparams["weight_decay"], masks.from_hparams(hparams, ctx)),
        optax.sgd(schedules.from_hparams(hparams, ctx), hparams["momentum"],
                  nesterov=hparams["nesterov"] if nesterov is None else nesterov),
    )


def check(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> None:
    """spec.UserError (one line) for a bad schedule (schedules.check); the ranges (momentum in
    [0, 1), ...) are VALID_RANGES, checked first by check_hparams."""
    schedules.check(hparams, ctx)


init, update, next_phase, check_hparams = protocol.from_optax(optimizer, check, "sgd", VALID_RANGES)
