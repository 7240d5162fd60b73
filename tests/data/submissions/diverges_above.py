"""Plain SGD that diverges (a NaN update) when learning_rate > 1: studies must count such trials as
infeasible. The learning rate is traced in the compiled step, so the choice is a jnp.where."""
import jax
import jax.numpy as jnp

DEFAULT_HPARAMS = {"learning_rate": 0.1, "momentum": 0.0}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    lr = hparams["learning_rate"]
    scale = jnp.where(lr > 1.0, jnp.nan, -lr)
    return jax.tree.map(lambda g: scale * g, grads), state
