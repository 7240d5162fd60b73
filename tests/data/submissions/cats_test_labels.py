"""An adversarial submission: has another process read the test labels at import."""
import subprocess

import jax

TEST_LABELS = subprocess.run(["cat", "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"],
                             capture_output=True, check=True).stdout

DEFAULT_HPARAMS = {"learning_rate": 0.1}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: -hparams["learning_rate"] * g, grads), state
