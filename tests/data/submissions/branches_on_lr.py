"""Branches in Python on a numeric hparam, which the compiled step traces: a one-line error."""
import jax

DEFAULT_HPARAMS = {"learning_rate": 0.1}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    lr = hparams["learning_rate"] if hparams["learning_rate"] > 0 else 0.0
    return jax.tree.map(lambda g: -lr * g, grads), state
