"""A broken submission: its update calls sys.exit(3)."""
import sys

DEFAULT_HPARAMS = {"learning_rate": 0.1}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    sys.exit(3)
