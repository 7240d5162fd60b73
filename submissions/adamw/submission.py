r"""AdamW: Adam with decoupled weight decay on weight-like parameters (Loshchilov & Hutter 2019).

    g_t <- g_t * min(1, c / ||g_t||_2)                    (if c = grad_clip_norm > 0; the norm is
                                                           over all parameters at once)
    m_t = b1 m_{t-1} + (1 - b1) g_t,   v_t = b2 v_{t-1} + (1 - b2) g_t^2
    m^  = m_t / (1 - b1^t),            v^  = v_t / (1 - b2^t)     (if bias_correction)
    w_{t+1} = w_t - eta_t * (m^ / (sqrt(v^) + eps) + lambda * w_t)   (lambda term: weights only,
                                                                     not BN/LN scales or biases;
                                                                     every tensor with
                                                                     exclude_norm_and_bias=False,
                                                                     submissions/lib/masks.py)

bias_correction=False gives the BERT AdamWeightDecay update that Nado et al. 2021 (Sec. 3) point
out is missing the correction (submissions/bert_adamw is that optimizer with its clipping and
schedule). eta_t: hparams["schedule"], by default cosine decay with linear warmup (Nado et al.
Sec. 4); warmup_steps >= 0 gives the warmup in steps, else warmup_fraction of the schedule's span.

Clipping: grad_clip_norm = 0 (the default) does not clip; c > 0 runs optax.clip_by_global_norm(c)
as the first transform (submissions/lib/clipping.py), as the BERT code's
tf.clip_by_global_norm(grads, clip_norm=1.0) before its optimizer; a negative value is an error.

Phases: with restart_per_phase the schedule spans the current phase only, and next_phase starts
each phase after the first with fresh moments and step count 0 (Nado et al. Table 8 tune an
independent Adam per BERT phase); without it the state and the schedule run across phases.
"""

from __future__ import annotations

import optax

from harness import spec
from submissions.lib import clipping, masks, protocol, schedules, transforms, valid_ranges

DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {
    **schedules.DEFAULTS,
    "learning_rate": 0.03,
    "b1": 0.9,
    "b2": 0.999,
    "eps": 1e-8,
    "weight_decay": 0.1,
    "exclude_norm_and_bias": True,  # False: decay every tensor (Nado et al. Fig. 4 "L2 variables")
    "bias_correction": True,
    "grad_clip_norm": 0.0,  # 0: no clipping; > 0: clip the gradient's global norm to this value
    "schedule": "cosine",
    "warmup_fraction": 0.1,
    "final_learning_rate": 0.0,
    "p_decay": 1.0,
}

#: grad_clip_norm: 0 means "no clipping transform", so its value changes the program.
STATIC_HPARAMS: frozenset[str] = clipping.STATIC_HPARAMS

#: Where the update rule is defined (submissions/lib/valid_ranges.py); grad_clip_norm >= 0.
VALID_RANGES: valid_ranges.Ranges = {
    **schedules.VALID_RANGES,
    **clipping.VALID_RANGES,
    **valid_ranges.ADAM_MOMENTS,
    "learning_rate": valid_ranges.LEARNING_RATE,
    "weight_decay": valid_ranges.WEIGHT_DECAY,
}


def optimizer(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> optax.GradientTransformation:
    """The optax transformation of the docstring's update rule."""
    return clipping.clipped(hparams, transforms.adamw(
        schedules.from_hparams(hparams, ctx), b1=hparams["b1"], b2=hparams["b2"],
        eps=hparams["eps"], weight_decay=hparams["weight_decay"],
        mask=masks.from_hparams(hparams, ctx), bias_correction=hparams["bias_correction"]))


def check(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> None:
    """spec.UserError (one line) for a bad schedule (schedules.check); the ranges are VALID_RANGES."""
    schedules.check(hparams, ctx)


init, update, next_phase, check_hparams = protocol.from_optax(optimizer, check, "adamw", VALID_RANGES)
