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
"""

from __future__ import annotations

import optax

from harness import spec
from submissions.lib import protocol, schedules, transforms, valid_ranges

DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {
    **schedules.DEFAULTS,
    "learning_rate": 20.0,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "trust_coefficient": 0.001,
    "eps": 0.0,
    "exclude_norm_and_bias": True,
    "warmup_fraction": 0.2,
}

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
    mask = spec.weight_mask(ctx.param_types) if hparams["exclude_norm_and_bias"] else True
    return transforms.lars(
        schedules.from_hparams(hparams, ctx), momentum=hparams["momentum"],
        weight_decay=hparams["weight_decay"], trust_coefficient=hparams["trust_coefficient"],
        eps=hparams["eps"], mask=mask)


def check(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> None:
    """spec.UserError (one line) for a bad schedule (schedules.check)."""
    schedules.check(hparams, ctx)


init, update, next_phase, check_hparams = protocol.from_optax(optimizer, check, "lars", VALID_RANGES)
