r"""LARS as in the MLPerf ResNet-50 reference (You et al. 2017; Nado et al. 2021, Sec. 2 and 4).

For weight-like tensors w (layer-wise norms):
    trust   = eta * ||w|| / (||g|| + lambda * ||w|| + eps)     (1 if ||w|| = 0 or ||g|| = 0)
    v_{t+1} = m * v_t + lr_t * trust * (g + lambda * w),      w_{t+1} = w_t - v_{t+1}
For batch-norm scales/offsets and biases (exclude_norm_and_bias=True, the MLPerf pipeline):
    v_{t+1} = m * v_t + lr_t * g,                              w_{t+1} = w_t - v_{t+1}
exclude_norm_and_bias=False applies LARS to every tensor ("LARS/LARS" in Nado et al. Table 5).
lr_t: MLPerf polynomial schedule with p_warmup = 1. Not optax.lars (it divides by ||g + lambda w||).
warmup_steps >= 0 sets the warmup in steps (Nado et al. Table 6: 638 / 706), else
warmup_fraction of the schedule's span; restart_per_phase: see protocol.from_optax.

variant = "mlperf" (the default) is the rule above. variant = "you2019" is You et al. 2019 (the
LAMB paper) Algorithm 1, phi(z) = z (transforms.lars_you2019): the trust ratio on the momentum,
the learning rate outside it, an EMA momentum, no eta and no eps::

    m_{t+1} = m * m_t + (1 - m) * (g + lambda * w),   w_{t+1} = w_t - lr_t * ||w|| / ||m_{t+1}|| * m_{t+1}

(on BN/bias with exclude_norm_and_bias: m_{t+1} = m * m_t + (1 - m) * g, w_{t+1} = w_t - lr_t * m_{t+1});
trust_coefficient and eps are then unused.
"""

from __future__ import annotations

import optax

from harness import spec
from submissions.lib import masks, protocol, schedules, transforms, valid_ranges

DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {
    **schedules.DEFAULTS,
    "learning_rate": 20.0,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "trust_coefficient": 0.001,
    "eps": 0.0,
    "exclude_norm_and_bias": True,
    "warmup_fraction": 0.2,
    "variant": "mlperf",  # or "you2019" (module docstring)
}

#: The update rules of `variant`: MLPerf's (momentum on the trust-scaled gradient), You et al. 2019's
#: Algorithm 1 (trust ratio on the momentum).
VARIANTS = ("mlperf", "you2019")

#: No float changes the program.
STATIC_HPARAMS: frozenset[str] = frozenset()

#: Where the update rule is defined (submissions/lib/valid_ranges.py).
VALID_RANGES: valid_ranges.Ranges = {
    **schedules.VALID_RANGES,
    "learning_rate": valid_ranges.LEARNING_RATE,
    "momentum": valid_ranges.DECAY,
    "weight_decay": valid_ranges.WEIGHT_DECAY,
    "trust_coefficient": valid_ranges.above(0.0, "eta scales every weight's step: 0 freezes the weights"),
    "eps": valid_ranges.GUARDED_EPS,  # the trust ratio is 1 where ||w|| or ||g|| is 0
}


def optimizer(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> optax.GradientTransformation:
    """The optax transformation of the docstring's update rule."""
    mask = masks.from_hparams(hparams, ctx)
    if hparams["variant"] == "you2019":
        return transforms.lars_you2019(schedules.from_hparams(hparams, ctx), momentum=hparams["momentum"],
                                       weight_decay=hparams["weight_decay"], mask=mask)
    return transforms.lars(
        schedules.from_hparams(hparams, ctx), momentum=hparams["momentum"],
        weight_decay=hparams["weight_decay"], trust_coefficient=hparams["trust_coefficient"],
        eps=hparams["eps"], mask=mask)


def check(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> None:
    """spec.UserError (one line) for an unknown variant or a bad schedule (schedules.check)."""
    if hparams["variant"] not in VARIANTS:
        raise spec.UserError(f"submission lars: unknown variant {hparams['variant']!r}; pass variant="
                             f"{' or '.join(VARIANTS)}")
    schedules.check(hparams, ctx)


init, update, next_phase, check_hparams = protocol.from_optax(optimizer, check, "lars", VALID_RANGES)
