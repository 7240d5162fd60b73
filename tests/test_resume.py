"""Killed runs: recorded honestly and resumed bit for bit (issue 14 §1).

Real processes (`python -m harness run`) on fashion_mnist_resnet, killed with SIGKILL or SIGTERM.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import REPO

from harness import store

EVAL_COLUMNS = ("step", "train_loss", "train_metric", "valid_loss", "valid_metric", "test_loss", "test_metric")
BUDGET = 39  # three evaluations of fashion_mnist_resnet (every 13 steps)


def command(db: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harness", "run", "--workload=fashion_mnist_resnet", "--submission=nesterov",
            "--seeds=0", f"--budget={BUDGET}", f"--results={db}", "--progress=false", *extra]


def query(db: str, sql: str, *params: object) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def wait_for(db: str, sql: str, proc: subprocess.Popen[str], timeout: float = 300) -> None:
    """Poll the database until `sql` returns a row (the run got that far)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if os.path.exists(db):
            try:
                if query(db, sql):
                    return
            except sqlite3.OperationalError:  # the schema is being created
                pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {sql}")


def evals(db: str, run_id: int) -> list[tuple]:
    return query(db, f"SELECT {', '.join(EVAL_COLUMNS)} FROM evals WHERE run_id = ? ORDER BY step", run_id)


@pytest.mark.slow
def test_kill_9_after_a_checkpoint_then_the_same_command_resumes_bit_for_bit(tmp_path: str) -> None:
    reference_db, db = f"{tmp_path}/reference.db", f"{tmp_path}/killed.db"
    reference = subprocess.run(command(reference_db), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = evals(reference_db, 1)
    assert [e[0] for e in expected] == [13, 26, 39]

    cmd = command(db, "--checkpoint_every=13")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(db, "SELECT 1 FROM runs WHERE checkpoint_step = 13", proc)
    time.sleep(random.uniform(0.0, 2.0))  # somewhere in steps 14-39 (or just after)
    proc.kill()
    proc.communicate()
    with store.ResultsReader(db) as results:  # the killed process is gone: read as interrupted
        (status,) = results.runs()["status"]
    if status == "completed":
        pytest.skip("the run finished before the kill (machine too fast for the random delay)")
    assert status == "interrupted"
    assert query(db, "SELECT status FROM runs") == [("running",)]  # what the dead process left

    resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert query(db, "SELECT run_id, status, resumes, steps_done FROM runs") == [(1, "completed", 1, BUDGET)]
    assert evals(db, 1) == expected  # bit for bit: the same floats from the database
    assert not os.path.exists(f"{tmp_path}/killed.checkpoints/run_1")  # removed when the run ended
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "seed 0: already recorded (run 1, completed); skipped" in again.stdout
    assert "all recorded: nothing to run" in again.stdout and "compiled in" not in again.stdout  # no compile


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_record_the_run_as_interrupted(tmp_path: str, signum: int) -> None:
    db = f"{tmp_path}/r.db"
    proc = subprocess.Popen(command(db, "--checkpoint_every=13"), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(db, "SELECT 1 FROM runs WHERE checkpoint_step = 13", proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"interrupted by {signal.Signals(signum).name}: run 1 "), lines
    assert "resumes it from its checkpoint at step 13" in lines[0]
    (status, steps_done, finished), = query(db, "SELECT status, steps_done, finished_at FROM runs")
    assert status == "interrupted" and steps_done >= 13 and finished is not None
