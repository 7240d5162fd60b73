"""A probe for tests/test_audit.py: opens the path in $AUDIT_PROBE_PATH at import (a file of the
submission's own directory, a symbolic link, ...)."""
import os

import jax

with open(os.environ["AUDIT_PROBE_PATH"], "rb") as f:
    CONTENTS = f.read()

DEFAULT_HPARAMS = {"learning_rate": 0.1}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: -hparams["learning_rate"] * g, grads), state
