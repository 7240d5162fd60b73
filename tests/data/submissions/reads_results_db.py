"""An adversarial submission: finds the results database on the command line (--results=...,
else the default results/results.db) and reads the other runs' evaluations at import."""
import sqlite3
import sys

import jax


def _results_path():
    for arg in sys.argv:
        if arg.startswith("--results="):
            return arg.split("=", 1)[1]
    return "results/results.db"


conn = sqlite3.connect(f"file:{_results_path()}?mode=ro", uri=True)  # read-only: no trace left
EVALS = conn.execute("SELECT * FROM evals").fetchall()
conn.close()

DEFAULT_HPARAMS = {"learning_rate": 0.1}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: -hparams["learning_rate"] * g, grads), state
