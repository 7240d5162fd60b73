r"""Heavy-ball (Polyak) momentum with L2 on weight-like parameters (Nado et al. 2021, Sec. 2.1.1).

    g_t     = grad l(w_t) + lambda * w_t       (L2 on weights only: no BN scale/offset, no bias;
                                        every tensor with exclude_norm_and_bias=False)
    v_t     = mu * v_{t-1} + g_t,              v_0 = 0
    w_{t+1} = w_t - eta_t * v_t

eta_t: MLPerf polynomial schedule (Nado et al. Sec. 2.1.4). The learning rate multiplies the
momentum buffer from outside (optax.sgd), unlike the TF/MLPerf MomentumOptimizer-in-LARS form.
warmup_steps >= 0 sets the warmup in steps (Nado et al. Table 6: 638 / 706), else
warmup_fraction of the schedule's span; restart_per_phase: see protocol.from_optax.
Built by the sgd submission's optimizer with nesterov=False and checked by its VALID_RANGES (mu
in [0, 1), ...) and check (the schedule); mu is traced, the momentum buffer always there.
"""

from __future__ import annotations

import optax

from harness import spec
from submissions.lib import protocol, schedules, valid_ranges
from submissions.sgd import submission as _sgd

DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {
    **schedules.DEFAULTS,
    "learning_rate": 2.0,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "exclude_norm_and_bias": True,  # False: L2 on every tensor (Nado et al. Fig. 4 "L2 variables")
}


def optimizer(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> optax.GradientTransformation:
    """The optax transformation of the docstring's update rule."""
    return _sgd.optimizer(hparams, ctx, nesterov=False)


#: No float changes the program (the sgd submission's: momentum is traced).
STATIC_HPARAMS: frozenset[str] = _sgd.STATIC_HPARAMS

#: The sgd submission's (the same numeric hparams, the same update rule).
VALID_RANGES: valid_ranges.Ranges = _sgd.VALID_RANGES

init, update, next_phase, check_hparams = protocol.from_optax(optimizer, _sgd.check, "momentum", VALID_RANGES)
