"""An adversarial submission: its init reads the test labels in a thread of its own (the refusal is
raised in that thread, not in the harness's)."""
import threading

import jax

LABELS = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
DEFAULT_HPARAMS = {"learning_rate": 0.1}
STOLEN = []


def _read():
    with open(LABELS, "rb") as f:
        STOLEN.append(f.read())


def init(params, hparams, ctx):
    thread = threading.Thread(target=_read)
    thread.start()
    thread.join()
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: -hparams["learning_rate"] * g, grads), state
