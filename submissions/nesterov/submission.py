r"""Nesterov momentum with L2 on weight-like parameters (Nado et al. 2021, Sec. 2.1.1, 2.1.3, 2.1.4).

    g_t     = grad l(w_t) + lambda * w_t       (L2 on weights only: no BN scale/offset, no bias;
                                        every tensor with exclude_norm_and_bias=False)
    v_t     = mu * v_{t-1} + g_t,              v_0 = 0
    w_{t+1} = w_t - eta_t * (mu * v_t + g_t)

eta_t: MLPerf polynomial schedule, p_warmup = 2 as Nado et al. Configuration B (Table 1).
This is optax.add_decayed_weights (masked) followed by optax.sgd(nesterov=True): the sgd
submission's optimizer with nesterov=True, checked by its VALID_RANGES (mu in [0, 1), ...) and
check (the schedule).
warmup_steps >= 0 sets the warmup in steps (Nado et al. Table 6: 638 / 706), else
warmup_fraction of the schedule's span; restart_per_phase: see protocol.from_optax.
"""

from __future__ import annotations

import optax

from harness import spec
from submissions.lib import protocol, schedules, valid_ranges
from submissions.sgd import submission as _sgd

DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {
    **schedules.DEFAULTS,
    "learning_rate": 1.0,
    "momentum": 0.95,
    "weight_decay": 5e-4,
    "exclude_norm_and_bias": True,  # False: L2 on every tensor (Nado et al. Fig. 4 "L2 variables")
    "p_warmup": 2.0,
}


def optimizer(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> optax.GradientTransformation:
    """The optax transformation of the docstring's update rule."""
    return _sgd.optimizer(hparams, ctx, nesterov=True)


#: No float changes the program (the sgd submission's: momentum is traced).
STATIC_HPARAMS: frozenset[str] = _sgd.STATIC_HPARAMS

#: The sgd submission's (the same numeric hparams, the same update rule).
VALID_RANGES: valid_ranges.Ranges = _sgd.VALID_RANGES

init, update, next_phase, check_hparams = protocol.from_optax(optimizer, _sgd.check, "nesterov", VALID_RANGES)
