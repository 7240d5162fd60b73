"""Shared fixtures: the repository path, a CLI runner, a results DB holding one real run."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAD_SUBMISSIONS = os.path.join(REPO, "tests", "data", "submissions")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600
            ) -> subprocess.CompletedProcess[str]:
    """Run `python -m <args>` from the repository root and capture its output."""
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="session")
def recorded_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A results database holding one real 2-step run (seed 0) of nesterov on fashion_mnist_resnet."""
    path = str(tmp_path_factory.mktemp("results") / "results.db")
    proc = run_cli("harness", "run", "--workload=fashion_mnist_resnet", "--submission=nesterov",
                   "--seeds=0", "--budget=2", f"--results={path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return path


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli
