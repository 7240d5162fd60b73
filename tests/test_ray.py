"""`--ray` (harness/ray_cluster.py, ray_runner.py, ray_study.py) on a real local Ray cluster with 2
worker processes: a study records the same evals, seed by seed, as without Ray; a worker killed
with SIGKILL mid-run is restarted by Ray and the study completes with nothing missing or repeated;
a failing submission is recorded failed once; bad --ray input is one line; no Ray without --ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from conftest import BAD_SUBMISSIONS, REPO, Result, file_digest, run_cli
from test_study import _wait_and_kill, rows


def ray_flags(tmp_path: str) -> list[str]:
    """A local cluster of 2 workers with a compilation cache of the test's own (what the first
    worker fills and the second loads)."""
    return ["--ray", "--ray_workers=2", f"--ray_compilation_cache={tmp_path}/cache"]


# --- bad input: one line, exit 2, nothing written -----------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--ray=127.0.0.1:1"], "--ray=127.0.0.1:1: no Ray cluster answers there"),
    (["--ray="], "--ray= needs an address"),
    (["--ray_workers=2"], "--ray_workers goes with --ray"),
    (["--ray", "--ray_workers=0"], "--ray_workers must be >= 1"),
    (["--ray", "--ray_cpus=0"], "--ray_cpus must be >= 1"),
    (["--ray", "--checkpoint_every=5"], "--checkpoint_every does not go with --ray"),
    (["--ray", "--tensorboard_dir=tb"], "--tensorboard_dir does not go with --ray"),
])
@pytest.mark.parametrize("command", [["run"], ["tune", "--trials=2"]])
def test_bad_ray_input_is_one_line(command: list[str], args: list[str], message: str, results_db: str,
                                   main_in_process: Callable[..., Result]) -> None:
    before = file_digest(results_db)
    result = main_in_process("harness", *command, "--workload=fashion_mnist_lenet", "--submission=nesterov",
                             "--budget=1", f"--results={results_db}", *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert file_digest(results_db) == before


def test_ray_is_not_imported_without_the_flag() -> None:
    code = ("import sys\n"
            "from absl import flags\n"
            "import harness.__main__ as m, harness.runner, harness.study, harness.ray_cluster\n"
            "fv = flags.FlagValues(); m.define_flags(fv); fv(['harness', '--noray'])\n"
            "assert fv.ray is None and m._ray_settings(fv) is None\n"
            "fv = flags.FlagValues(); m.define_flags(fv); fv(['harness', '--ray'])\n"
            "assert fv.ray == 'local'\n"
            "fv = flags.FlagValues(); m.define_flags(fv); fv(['harness', '--ray=auto'])\n"
            "assert fv.ray == 'auto'\n"
            "print(sorted(name for name in sys.modules if name == 'ray' or name.startswith('ray.')))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


# --- on a local Ray cluster ----------------------------------------------------------------------------

STUDY = ["tune", "--workload=fashion_mnist_resnet", "--submission=nesterov", "--budget=2", "--trials=2",
         "--confirm_seeds=3", "--study=s", "--progress=false"]
EVAL_COLUMNS = "step, train_loss, train_metric, valid_loss, valid_metric, test_loss, test_metric"


def recorded(db: str) -> dict[tuple[str, int], list[tuple]]:
    """(role, seed) -> (status, the run's evals) of every run of the study."""
    runs = rows(db, "SELECT study_role, seed, status, run_id FROM runs ORDER BY run_id")
    assert len({(role, seed) for role, seed, _, _ in runs}) == len(runs), runs  # one run per seed
    return {(role, seed): [status, *rows(db, f"SELECT {EVAL_COLUMNS} FROM evals WHERE run_id = ? ORDER BY step",
                                         run_id)]
            for role, seed, status, run_id in runs}


@pytest.mark.slow
@pytest.mark.cli
def test_a_study_on_ray_records_the_same_evals_as_without(tmp_path: str) -> None:
    plain, on_ray = os.path.join(tmp_path, "plain.db"), os.path.join(tmp_path, "ray.db")
    without = run_cli("harness", *STUDY, f"--results={plain}")
    assert without.returncode == 0, without.stderr[-2000:]
    with_ray = run_cli("harness", *STUDY, f"--results={on_ray}", *ray_flags(tmp_path))
    assert with_ray.returncode == 0, with_ray.stderr[-2000:]
    assert "ray: 2 worker(s), 1 CPU(s) each" in with_ray.stdout
    assert "ray: 5 done, 0 running, 0 queued" in with_ray.stdout
    a, b = recorded(plain), recorded(on_ray)
    assert sorted(a) == sorted(b) and len(a) == 5  # 2 trials, 3 confirmation seeds
    for key in a:
        assert a[key] == b[key], key  # status and every eval, bit for bit
    trials = "SELECT trial, point, seed, feasible FROM study_trials ORDER BY trial"
    assert rows(plain, trials) == rows(on_ray, trials)
    assert rows(on_ray, "SELECT status, selected_trial FROM studies") == rows(plain, "SELECT status, "
                                                                               "selected_trial FROM studies")
    # the workers' runs carry their own process identity; the second worker loaded the first's compilation
    assert len(rows(on_ray, "SELECT DISTINCT pid FROM runs")) == 2
    assert os.listdir(os.path.join(tmp_path, "cache"))


def _worker_pid(proc: subprocess.Popen, timeout: float = 600) -> int:
    """The pid of worker 0 from the driver's line `ray: 2 worker(s) ...: worker 0 (pid P on H), ...`."""
    assert proc.stdout is not None
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if line.startswith("ray: 2 worker(s)"):
            return int(line.split("worker 0 (pid ")[1].split()[0])
    proc.kill()
    raise AssertionError(f"no worker line: {''.join(seen)[-2000:]}")


def lenet_study(db: str, tmp_path: str) -> list[str]:
    """A study of 5 short runs on Ray: 2 trials, 3 confirmation seeds."""
    return [sys.executable, "-m", "harness", "tune", "--workload=fashion_mnist_lenet", "--submission=nesterov",
            "--budget=3", "--trials=2", "--confirm_seeds=3", "--study=k", f"--results={db}", "--progress=false",
            *ray_flags(tmp_path)]


def check_complete(db: str) -> None:
    """The study's 5 runs are recorded, each once and completed, the study done."""
    runs = rows(db, "SELECT study_role, seed, status FROM runs ORDER BY run_id")
    assert [s for _, _, s in runs] == ["completed"] * 5, runs
    assert sorted(seed for role, seed, _ in runs if role == "confirmation") == [0, 1, 2]
    trials = rows(db, "SELECT trial, seed, run_id FROM study_trials ORDER BY trial")
    assert [t for t, _, _ in trials] == [0, 1]
    assert sorted(seed for role, seed, _ in runs if role == "trial") == sorted(s for _, s, _ in trials)
    assert rows(db, "SELECT COUNT(*) FROM evals") == [(5,)]  # one eval per run (budget 3 ends in one)
    assert rows(db, "SELECT status FROM studies") == [("done",)]


@pytest.mark.slow
@pytest.mark.cli
def test_a_worker_killed_mid_run_is_retried_and_nothing_is_missing_or_repeated(tmp_path: str) -> None:
    db = os.path.join(tmp_path, "r.db")
    command = lenet_study(db, tmp_path)
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = _worker_pid(proc)
    time.sleep(1.0)  # the workers took the two trials as they announced themselves
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-2000:]
    assert f"worker 0 (pid {pid} on" in out and "was restarted by Ray" in out
    check_complete(db)


@pytest.mark.slow
@pytest.mark.cli
def test_a_restarted_driver_runs_only_what_is_missing(tmp_path: str) -> None:
    db = os.path.join(tmp_path, "r.db")
    command = lenet_study(db, tmp_path)
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_and_kill(proc, db, "SELECT 1 FROM study_trials")  # kill -9 once a trial is written
    before = rows(db, "SELECT run_id, study_role, seed FROM runs ORDER BY run_id")
    assert before and len(before) < 5
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    check_complete(db)  # nothing run twice, nothing missing
    assert rows(db, "SELECT run_id, study_role, seed FROM runs ORDER BY run_id")[:len(before)] == before


@pytest.mark.slow
@pytest.mark.cli
def test_a_failing_submission_is_recorded_failed_once_not_retried(tmp_path: str) -> None:
    db = os.path.join(tmp_path, "r.db")
    proc = run_cli("harness", "run", "--workload=fashion_mnist_lenet", f"--submission={BAD_SUBMISSIONS}/"
                   "fails_at_step_3.py", "--seeds=0-1", "--budget=5", f"--results={db}", "--progress=false",
                   *ray_flags(tmp_path))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "2 of 2 seed(s) failed" in proc.stderr
    runs = rows(db, "SELECT seed, status, steps_done, error FROM runs ORDER BY seed")
    assert [(seed, status) for seed, status, _, _ in runs] == [(0, "failed"), (1, "failed")]
    assert all("update 3 found a bug" in error for _, _, _, error in runs)


@pytest.mark.slow
@pytest.mark.cli
def test_bad_input_found_on_a_worker_is_one_line(tmp_path: str) -> None:
    proc = run_cli("harness", "run", "--workload=fashion_mnist_lenet", "--submission=nesterov", "--budget=1",
                   f"--data_dir={tmp_path}/nowhere", f"--results={tmp_path}/r.db", "--ray", "--ray_workers=1")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert proc.stderr.startswith("error: ") and "nowhere" in proc.stderr


@pytest.mark.slow
@pytest.mark.cli
def test_sigterm_ends_the_driver_as_interrupted_and_the_same_command_continues(tmp_path: str) -> None:
    db = os.path.join(tmp_path, "r.db")
    command = [sys.executable, "-m", "harness", "run", "--workload=fashion_mnist_lenet", "--submission=nesterov",
               "--seeds=0-3", "--budget=3", f"--results={db}", "--progress=false", *ray_flags(tmp_path)]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _worker_pid(proc)
    time.sleep(1.0)  # the workers took a seed each
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-2000:]
    assert "interrupted by SIGTERM: 2 run(s) in flight on Ray workers not recorded" in err
    assert rows(db, "SELECT COUNT(*) FROM runs WHERE status = 'running'") == [(0,)]
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert rows(db, "SELECT seed, status FROM runs ORDER BY seed") == [(s, "completed") for s in range(4)]
