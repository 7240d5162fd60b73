"""An adversarial submission: its init loads the dataset through the harness's own loader (the
harness's frames open the files, but on the submission's behalf). Plain SGD otherwise."""
import jax

from workloads.data import fashion_mnist

DEFAULT_HPARAMS = {"learning_rate": 0.1}


def init(params, hparams, ctx):
    init.test_labels = fashion_mnist.load().test_y
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: -hparams["learning_rate"] * g, grads), state
