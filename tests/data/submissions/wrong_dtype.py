"""A malformed submission: update returns float16 updates for float32 params."""
import jax
import jax.numpy as jnp

DEFAULT_HPARAMS = {"learning_rate": 0.1}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: (-hparams["learning_rate"] * g).astype(jnp.float16), grads), state
