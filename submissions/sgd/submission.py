r"""Plain SGD, momentum optional (0 by default), L2 on weight-like parameters only.

    g_t     = grad l(w_t) + lambda * w_t       (lambda on weights only: no BN/LN scale/offset, no bias)
    momentum mu = 0:   w_{t+1} = w_t - eta_t * g_t
    momentum mu > 0:   v_t = mu * v_{t-1} + g_t,  w_{t+1} = w_t - eta_t * v_t   (mu v_t + g_t if nesterov)

optax.add_decayed_weights (masked) then optax.sgd. With mu = 0 there is no momentum buffer.
eta_t: hparams["schedule"] (submissions/lib/schedules.py), MLPerf polynomial by default. The
direction of choice for grafting (Adam#SGD, Agarwal et al. Sec. 4).

``optimizer`` is the builder of the whole SGD family: the momentum and nesterov submissions are
this update rule with nesterov fixed (and their own defaults), sgd_corrected scales its steps.
"""

from __future__ import annotations

import optax

from harness import spec
from submissions.lib import protocol, schedules

DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {
    **schedules.DEFAULTS,
    "learning_rate": 0.5,
    "momentum": 0.0,
    "nesterov": False,
    "weight_decay": 0.0,
}


def optimizer(hparams: spec.Hparams, ctx: spec.SubmissionContext, *, nesterov: bool | None = None
              ) -> optax.GradientTransformation:
    """The optax transformation of the docstring's update rule; ``nesterov`` (when given) in place
    of ``hparams["nesterov"]``, for the submissions that fix it and have no such hparam."""
    if not 0.0 <= hparams["momentum"] < 1.0:
        raise spec.UserError(f"hparam momentum must be in [0, 1), got {hparams['momentum']}")
    return optax.chain(
        optax.add_decayed_weights(hparams["weight_decay"], spec.weight_mask(ctx.param_types)),
        optax.sgd(schedules.from_hparams(hparams, ctx), hparams["momentum"] or None,
                  nesterov=hparams["nesterov"] if nesterov is None else nesterov),
    )


init, update, next_phase = protocol.from_optax(optimizer)
