"""A malformed submission: a default of None (a hyperparameter needs a value of one type)."""
import jax

DEFAULT_HPARAMS = {"learning_rate": 0.1, "momentum": None}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: -hparams["learning_rate"] * g, grads), state
