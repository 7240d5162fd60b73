"""Shared building blocks for submissions.

schedules       learning-rate schedules, the registry behind hparams["schedule"], schedules.DEFAULTS
transforms      hand-written optax transforms where optax's look-alikes differ (Adam without bias
                correction, AdamW, LAMB, MLPerf LARS)
clipping        optional global-norm gradient clipping from hparams["grad_clip_norm"]
protocol        the optax adapter: (init, update, next_phase) from an optimizer(hparams, ctx) builder
grafting        learning-rate grafting M#D (Agarwal et al., Algorithm 1) as an optax transform
graft_protocol  a grafted submission M#D from two submission modules (namespaced hparams)
corrections     fixed per-group step multipliers discovered by grafting (sgd_corrected)
"""
