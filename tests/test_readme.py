"""The README stays true: its tutorial submission runs, and its two commands exist."""

from __future__ import annotations

import os
import re
import sqlite3

import pytest
from conftest import REPO, run_cli


def readme() -> str:
    with open(os.path.join(REPO, "README.md")) as f:
        return f.read()


@pytest.mark.slow
@pytest.mark.cli
def test_tutorial_submission_runs(tmp_path: str) -> None:
    text = readme()
    block = re.search(r"Save this as `my_sgd.py`.*?```python\n(.*?)```", text, re.S)
    assert block, "tutorial code block not found"
    path = os.path.join(tmp_path, "my_sgd.py")
    with open(path, "w") as f:
        f.write(block.group(1))
    db = os.path.join(tmp_path, "r.db")
    proc = run_cli("harness", "run", "--workload=fashion_mnist_resnet", f"--submission={path}",
                   "--seeds=0", "--budget=2", f"--results={db}", "--hparams={\"learning_rate\": 1.0}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fashion_mnist_resnet my_sgd seed 0: completed" in proc.stdout
    (status,) = sqlite3.connect(db).execute("SELECT status FROM runs").fetchone()
    assert status == "completed"
    board = run_cli("scoring", "leaderboard", f"--results={db}", f"--out={tmp_path}/lb")
    assert board.returncode == 0 and "my_sgd" in board.stdout


def test_the_two_commands_are_the_makefile_targets_and_ci_runs_the_tests() -> None:
    text = readme()
    assert "make bench" in text and "make test" in text
    with open(os.path.join(REPO, "Makefile")) as f:
        makefile = f.read()
    assert re.search(r"^bench: setup", makefile, re.M) and re.search(r"^test: setup", makefile, re.M)
    with open(os.path.join(REPO, ".ci", "run")) as f:
        assert "make test" in f.read()
