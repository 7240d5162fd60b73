"""Multi-host path: two processes (one CPU device each) joined by jax.distributed on localhost run
the same command as one process would, feed their halves of each batch, and process 0 records a
run identical (to float tolerance) to a single-process run; run again, they skip the recorded seed
together (process 0 decides) and run the next one."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = ["-m", "harness", "run", "--workload=fashion_mnist_lenet", "--submission=nesterov",
        "--budget=4", "--progress=false"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def evals(db: str, seed: int) -> list[tuple[float, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT step, train_loss, valid_metric, test_loss FROM evals JOIN runs USING (run_id) "
                            "WHERE seed = ? ORDER BY step", (seed,)).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.cli
def test_two_processes_record_what_one_process_records(tmp_path: str) -> None:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    single = f"{tmp_path}/single.db"
    subprocess.run([sys.executable, *ARGS, "--seeds=0-1", f"--results={single}"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=600)
    multi = f"{tmp_path}/multi.db"

    def run_two(seeds: str) -> list[str]:
        port = free_port()
        procs = [subprocess.Popen([sys.executable, *ARGS, f"--seeds={seeds}", f"--results={multi}",
                                  "--distributed", f"--coordinator_address=localhost:{port}", "--num_processes=2",
                                  f"--process_id={i}"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for i in range(2)]
        outputs = [p.communicate(timeout=600)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
        return outputs

    outputs = run_two("0")
    assert "on 2 device(s)" in outputs[0]
    assert "[run 1]" in outputs[0] and "[run" not in outputs[1]  # process 0 alone records
    one, two = evals(single, 0), evals(multi, 0)
    assert len(one) == len(two) == 1
    np.testing.assert_allclose(np.array(two, float), np.array(one, float), rtol=1e-4)
    # Again with seeds 0-1: both processes skip seed 0 and run seed 1 together.
    outputs = run_two("0-1")
    assert "seed 0: already recorded (run 1, completed)" in outputs[0] and "[run 2]" in outputs[0]
    assert "seed 0" not in outputs[1]
    np.testing.assert_allclose(np.array(evals(multi, 1), float), np.array(evals(single, 1), float), rtol=1e-4)
    assert evals(single, 0) != evals(single, 1)  # the seeds differ: the check above can fail
