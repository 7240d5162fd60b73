"""Shared fixtures: the repository path, the entry points run in-process or as real subprocesses,
and a results database holding one recorded run."""

from __future__ import annotations

import dataclasses
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
    """Run `python -m <args>` from the repository root as a real process and capture its output
    (for what only a process shows: exit codes, tracebacks, several devices or hosts)."""
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@dataclasses.dataclass(frozen=True)
class Result:
    """What an in-process entry point printed and returned."""

    returncode: int
    stdout: str
    stderr: str


def invoke(program: str, *args: str, capsys: pytest.CaptureFixture[str]) -> Result:
    """Run `python -m <program> <args>` in this process (harness.cli.invoke: the same flag parsing
    and error handling as the real entry point, without paying for a new JAX process)."""
    import importlib

    from harness import cli

    module = importlib.import_module(f"{program}.__main__" if "." not in program else program)
    capsys.readouterr()
    code = cli.invoke(module.define_flags, module.main, [program, *args])
    out, err = capsys.readouterr()
    return Result(code, out, err)


def file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def main_in_process(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """invoke(program, *args) bound to this test's output capture."""
    return lambda program, *args: invoke(program, *args, capsys=capsys)


@pytest.fixture(scope="session")
def results_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A results database holding one completed run with one eval, written through the store (the
    file bad input must leave byte for byte unchanged)."""
    from harness import store

    path = str(tmp_path_factory.mktemp("results") / "results.db")
    conn = store.connect(path)
    rec = store.RunRecorder(conn, workload="fashion_mnist_resnet", submission="nesterov",
                            submission_path="submissions/nesterov/submission.py", hparams="{}",
                            knobs="{}", config_id="0123456789", seed=0, metric="accuracy",
                            direction="maximize", target=0.834, step_budget=2, global_batch_size=1280,
                            environment="{}")
    rec.record_eval(2, 0.5, train_loss=2.0, train_metric=0.2, valid_loss=2.1, valid_metric=0.15,
                    test_loss=2.1, test_metric=0.16)
    rec.finish("completed", steps_done=2, best_valid=0.15, train_seconds=0.5)
    conn.close()
    return path
