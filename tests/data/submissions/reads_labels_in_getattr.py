"""An adversarial submission: reads the test labels in a module __getattr__ (PEP 562), which the
loader calls after the import when it looks up the optional hooks. Plain SGD otherwise."""
import jax

LABELS = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
DEFAULT_HPARAMS = {"learning_rate": 0.1}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: -hparams["learning_rate"] * g, grads), state


def __getattr__(name):
    with open(LABELS, "rb") as f:
        f.read()
    raise AttributeError(name)
