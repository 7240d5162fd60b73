r"""LAMB, You et al. 2019 Algorithm 2 (phi(z) = z, layer-wise norms).

    g_t <- g_t * min(1, c / ||g_t||_2)                    (if c = grad_clip_norm > 0; the norm is
                                                           over all parameters at once)
    m_t = b1 m_{t-1} + (1 - b1) g_t,   v_t = b2 v_{t-1} + (1 - b2) g_t^2
    m^  = m_t / (1 - b1^t),            v^  = v_t / (1 - b2^t)       (if bias_correction)
    r_t = m^ / (sqrt(v^) + eps),       u_t = r_t + lambda * w_t
    w_{t+1} = w_t - eta_t * ||w_t|| / ||u_t|| * u_t                 (ratio 1 if a norm is 0)

exclude_norm_and_bias=True: BN/LN scales, offsets and biases get w -= eta_t * r_t (Adam, no decay,
no ratio). With bias_correction=False that is the Google/BERT LAMB; with True it is Nado et al.
2021 Table 5 "LAMB on weights, Adam on BN/bias", the default here: pure Algorithm 2
(exclude_norm_and_bias=False) reached at most 56% on fashion_mnist_resnet in our tuning (seed 0,
lr 0.003-0.03), echoing the 27.3% of "LAMB/LAMB" in Nado et al. Table 5.
eta_t: hparams["schedule"], by default linear warmup then linear decay as in You et al. (Sec. 4);
warmup_steps >= 0 gives the warmup in steps, else warmup_fraction of the schedule's span.

Clipping: grad_clip_norm = 0 (the default) does not clip; c > 0 runs optax.clip_by_global_norm(c)
as the first transform (submissions/lib/clipping.py), as Google's pretraining code does with
clip_norm=1.0 (google-research/bert before AdamWeightDecay; google-research/albert before its
LAMBOptimizer too). You et al. 2019 do not mention clipping. A negative value is an error.

Phases: with restart_per_phase the schedule spans the current phase only, and next_phase starts
each phase after the first with fresh moments and step count 0: the re-warm-up of You et al.'s
phase 2 ("we ramp up the learning rate from zero again in the second stage"). Without it the
state and the schedule run across phases.
"""

from __future__ import annotations

import optax

from harness import spec
from submissions.lib import clipping, masks, protocol, schedules, transforms, valid_ranges

DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {
    **schedules.DEFAULTS,
    "learning_rate": 0.1,
    "b1": 0.9,
    "b2": 0.999,
    "eps": 1e-6,
    "weight_decay": 0.01,
    "bias_correction": True,
    "exclude_norm_and_bias": True,
    "grad_clip_norm": 0.0,  # 0: no clipping; > 0: clip the gradient's global norm to this value
    "schedule": "linear",
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
    mask = masks.from_hparams(hparams, ctx)
    return clipping.clipped(hparams, transforms.lamb(
        schedules.from_hparams(hparams, ctx), b1=hparams["b1"], b2=hparams["b2"],
        eps=hparams["eps"], weight_decay=hparams["weight_decay"], mask=mask,
        bias_correction=hparams["bias_correction"]))


def check(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> None:
    """spec.UserError (one line) for a bad schedule (schedules.check); the ranges are VALID_RANGES."""
    schedules.check(hparams, ctx)


init, update, next_phase, check_hparams = protocol.from_optax(optimizer, check, "lamb", VALID_RANGES)
