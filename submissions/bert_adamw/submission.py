r"""The official BERT AdamWeightDecayOptimizer (Devlin et al. 2018; google-research/bert optimization.py).

    g_t     = g_t * min(1, c / ||g_t||_global)            (clip_by_global_norm, c = 1.0)
    m_t     = b1 m_{t-1} + (1 - b1) g_t,   v_t = b2 v_{t-1} + (1 - b2) g_t^2
    u_t     = m_t / (sqrt(v_t) + eps)                    (NO bias correction, eps = 1e-6)
    w_{t+1} = w_t - eta_t * (u_t + lambda * w_t)         (lambda = 0.01, weights only: not on
                                                          LayerNorm scales/offsets nor biases)
    eta_t   = peak * t / w                               for t < w
            = peak * (1 - min(t, T) / T) ** p            for t >= w   (p = 1, decays from step 0)

The missing bias correction and the jump of eta_t at t = w (it decays from step 0, so it drops
from peak * (w - 1) / w to about peak * (1 - w / T)) are the two details Nado et al. 2021 (Sec. 3,
footnotes 12-13) name as differences from standard Adam; You et al. 2019 ran their Adam(W) and
LAMB baselines in this code. The decay mask is spec.weight_mask (the code's
exclude_from_weight_decay = ["LayerNorm", "layer_norm", "bias"]; embeddings are decayed).
Built from lib/clipping.py (optax.clip_by_global_norm, as adamw and lamb clip; here c > 0 is
required) and transforms.adamw(bias_correction=False): optax.adamw always bias-corrects. The
schedule is schedules.bert_warmup_polynomial_decay (or any other one named by hparams["schedule"]).
"""

from __future__ import annotations

import optax

from harness import spec
from submissions.lib import clipping, protocol, schedules, transforms, valid_ranges

DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {
    **schedules.DEFAULTS,
    "learning_rate": 1e-4,  # BERT pre-training (Devlin et al. 2018, batch 256)
    "b1": 0.9,
    "b2": 0.999,
    "eps": 1e-6,
    "weight_decay": 0.01,
    "grad_clip_norm": 1.0,
    "schedule": "bert_warmup_polynomial_decay",
    "warmup_fraction": 0.01,  # BERT: 10,000 warmup steps of 1,000,000
    "final_learning_rate": 0.0,
    "p_decay": 1.0,
}

#: grad_clip_norm: lib/clipping.py builds the clipping transform only for a value > 0, so its value
#: changes the program (here it must be > 0, VALID_RANGES says so).
STATIC_HPARAMS: frozenset[str] = clipping.STATIC_HPARAMS

#: Where the update rule is defined (submissions/lib/valid_ranges.py); the BERT code always clips.
VALID_RANGES: valid_ranges.Ranges = {
    **schedules.VALID_RANGES,
    **valid_ranges.ADAM_MOMENTS,
    "learning_rate": valid_ranges.LEARNING_RATE,
    "weight_decay": valid_ranges.WEIGHT_DECAY,
    "grad_clip_norm": valid_ranges.above(0.0, "the BERT code always clips, to 1.0"),
}


def optimizer(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> optax.GradientTransformation:
    """The optax transformation of the docstring's update rule (the clipping is not optional here)."""
    return clipping.clipped(hparams, transforms.adamw(
        schedules.from_hparams(hparams, ctx), b1=hparams["b1"], b2=hparams["b2"], eps=hparams["eps"],
        weight_decay=hparams["weight_decay"], mask=spec.weight_mask(ctx.param_types),
        bias_correction=False))


def check(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> None:
    """spec.UserError (one line) for a bad schedule (schedules.check); the ranges (grad_clip_norm > 0:
    the BERT code always clips) are VALID_RANGES."""
    schedules.check(hparams, ctx)


init, update, next_phase, check_hparams = protocol.from_optax(optimizer, check, "bert_adamw", VALID_RANGES)
