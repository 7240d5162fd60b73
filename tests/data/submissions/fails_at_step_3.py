"""Plain SGD whose third update raises on the host (a bug that shows only at run time): the harness
must record the seed as failed with the error and go on with the next seed."""
import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_HPARAMS = {"learning_rate": 0.1}


def _check(count: np.ndarray) -> np.ndarray:
    if int(count) == 3:
        raise RuntimeError("update 3 found a bug")
    return count


def init(params, hparams, ctx):
    return jnp.zeros((), jnp.int32)


def update(grads, state, params, hparams, ctx):
    count = jax.pure_callback(_check, jax.ShapeDtypeStruct((), jnp.int32), state + 1)
    return jax.tree.map(lambda g: -hparams["learning_rate"] * g, grads), count
