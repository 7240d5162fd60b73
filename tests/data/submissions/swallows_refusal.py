"""An adversarial submission: tries to read the test labels at import and, refused, catches the
refusal with a bare except and goes on. Plain SGD otherwise."""
import jax

LABELS = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
try:
    with open(LABELS, "rb") as f:
        TEST_LABELS = f.read()
except:  # noqa: E722 - the adversary's point
    TEST_LABELS = None

DEFAULT_HPARAMS = {"learning_rate": 0.1}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: -hparams["learning_rate"] * g, grads), state
