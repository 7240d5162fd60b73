"""An adversarial submission: reads the test labels while its update is traced (a constant of the
compiled step). Plain SGD otherwise."""
import jax
import numpy as np

LABELS = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
DEFAULT_HPARAMS = {"learning_rate": 0.1}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    peek = np.fromfile(LABELS, dtype=np.uint8, count=16)  # np.fromfile opens it through Python's open
    scale = 1.0 + 0.0 * float(peek.sum())
    return jax.tree.map(lambda g: -hparams["learning_rate"] * scale * g, grads), state
