"""An adversarial submission: reads the Fashion-MNIST test labels at import (issue 14, Sec. 5).

Plain SGD otherwise: without the harness's audit guard it imports, runs and completes normally."""
import gzip

import jax

LABELS = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
with gzip.open(LABELS, "rb") as f:
    TEST_LABELS = f.read()[8:]  # the IDX header is 8 bytes

DEFAULT_HPARAMS = {"learning_rate": 0.1}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: -hparams["learning_rate"] * g, grads), state
