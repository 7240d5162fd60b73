"""Gradient ascent: the training loss grows without ever becoming NaN or inf within a few steps
(a finite divergence, like SGD's losses of 4e7 on pydocs_bert): --divergence_factor must end it."""
import jax

DEFAULT_HPARAMS = {"learning_rate": 0.5}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: hparams["learning_rate"] * g, grads), state
