"""A well-formed submission whose updates blow up: the harness must record the run as diverged."""
import jax

DEFAULT_HPARAMS = {"learning_rate": 1e30}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: -(g + 1.0) * hparams["learning_rate"] * 1e30, grads), state
