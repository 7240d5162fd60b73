"""Shared building blocks for submissions.

schedules       learning-rate schedules, the registry behind hparams["schedule"], schedules.DEFAULTS
transforms      hand-written optax transforms where optax's look-alikes differ (Adam without bias
                correction, AdamW, LAMB, MLPerf LARS, You et al. 2019's LARS)
masks           which tensors decay and trust ratios apply to (hparams["exclude_norm_and_bias"])
clipping        optional global-norm gradient clipping from hparams["grad_clip_norm"]
protocol        the optax adapter: (init, update, next_phase) from an optimizer(hparams, ctx) builder
grafting        learning-rate grafting M#D (Agarwal et al., Algorithm 1) as an optax transform
graft_protocol  a grafted submission M#D from two submission modules (namespaced hparams)
corrections     fixed per-group step multipliers discovered by grafting (sgd_corrected)
valid_ranges    where each hyperparameter's update rule is defined, checked before a run

A built-in's id hashes the modules of this package it imports (harness/submission_sources.py).
"""
