"""Runs end honestly (issue 14 §1, §3, §4): a failing seed does not end the sweep, a signal is an
`interrupted` run and one line, a dead process's run reads as interrupted, a finite divergence is
a divergence."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable

import pytest
from conftest import BAD_SUBMISSIONS, REPO, Result

from harness import interrupts, process_identity, store
from harness.errors import UserError


def rows(db: str, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_signal_inside_deferred_is_raised_when_the_block_ends() -> None:
    interrupts.install()
    try:
        ran_to_the_end = False
        with pytest.raises(interrupts.Interrupted) as info, interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            ran_to_the_end = True  # the compiler would not have been interrupted half-way
        assert ran_to_the_end and info.value.signum == signal.SIGTERM and info.value.exit_code == 143
        with pytest.raises(interrupts.Interrupted) as info:
            os.kill(os.getpid(), signal.SIGINT)
        assert info.value.exit_code == 130 and str(info.value) == "interrupted by SIGINT"
    finally:
        interrupts.uninstall()


class _SignalsWhenCollected:
    """Sends SIGTERM from __del__, where Python prints and swallows the handler's exception (as in
    TensorFlow's ConcreteFunctionGarbageCollector.__del__, seen in a study)."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed raise
def test_an_interrupt_swallowed_by_a_del_is_raised_by_check() -> None:
    interrupts.install()
    try:
        interrupts.check()  # nothing received: a no-op
        _SignalsWhenCollected()  # collected at once: the Interrupted is raised and swallowed in __del__
        with pytest.raises(interrupts.Interrupted) as info:
            interrupts.check()
        assert info.value.signum == signal.SIGTERM
        interrupts.install()  # a new entry point forgets it
        interrupts.check()
    finally:
        interrupts.uninstall()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed raise
def test_a_run_whose_interrupt_was_swallowed_ends_interrupted_at_the_next_step(
        tmp_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import parallel, plan
    from harness.runner import RunOptions, run_sweep

    put_batch, calls = parallel.put_batch, []

    def put_batch_collecting_a_signaller(batch: object, mesh: object) -> object:
        calls.append(1)
        if len(calls) == 3:  # a training batch of the first steps
            _SignalsWhenCollected()
        return put_batch(batch, mesh)

    monkeypatch.setattr(parallel, "put_batch", put_batch_collecting_a_signaller)
    db = os.path.join(tmp_path, "r.db")
    interrupts.install()
    try:
        with pytest.raises(interrupts.Interrupted):
            run_sweep(plan.build("fashion_mnist_lenet", "nesterov", budget=10),
                      RunOptions(seeds=(0,), results=db, progress=False))
    finally:
        interrupts.uninstall()
    ((status, steps_done),) = rows(db, "SELECT status, steps_done FROM runs")
    assert status == "interrupted" and steps_done < 10  # without check(): completed at step 10


def test_a_run_of_a_gone_process_reads_as_interrupted(tmp_path: str) -> None:
    db = f"{tmp_path}/r.db"
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)
    conn = store.connect(db)
    fields = dict(workload="fashion_mnist_resnet", submission="nesterov", submission_path="x", hparams="{}",
                  knobs="{}", config_id="0123456789", metric="accuracy", direction="maximize", target=0.834,
                  step_budget=2, global_batch_size=1280, environment="{}")
    alive = store.RunRecorder(conn, seed=0, **fields)
    dead = store.RunRecorder(conn, seed=1, **fields)
    me = process_identity.current()
    # The dead run: a finished process's pid and start time (a pid reused later has another start time).
    conn.execute("UPDATE runs SET pid = ?, process_started = ? WHERE run_id = ?",
                 (int(child.stdout), me.started, dead.run_id))
    conn.commit()
    with store.ResultsReader(db) as results:
        runs = results.runs().set_index("run_id")
    assert runs.loc[alive.run_id, "status"] == "running" and not runs.loc[alive.run_id, "process_gone"]
    assert runs.loc[dead.run_id, "status"] == "interrupted" and runs.loc[dead.run_id, "process_gone"]
    assert store.latest_attempt(conn, "fashion_mnist_resnet", "0123456789", 1)["status"] == "interrupted"
    assert rows(db, "SELECT status FROM runs") == [("running",), ("running",)]  # readers never write
    conn.close()


@pytest.mark.slow
def test_a_failing_seed_is_recorded_and_the_sweep_goes_on(tmp_path: str,
                                                          main_in_process: Callable[..., Result]) -> None:
    db = f"{tmp_path}/r.db"
    result = main_in_process("harness", "run", "--workload=fashion_mnist_lenet",
                             f"--submission={BAD_SUBMISSIONS}/fails_at_step_3.py", "--seeds=0-1", "--budget=5",
                             f"--results={db}", "--progress=false")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 2 of 2 seed(s) failed (run(s) 1, 2;"), lines
    assert "update 3 found a bug" in lines[0]
    assert result.stdout.count(": failed at step") == 2  # one line per seed, both seeds ran
    (status, error), _ = rows(db, "SELECT status, error FROM runs ORDER BY run_id")
    assert status == "failed" and "Traceback" in error and "update 3 found a bug" in error


@pytest.mark.slow
def test_a_finite_divergence_ends_the_run_as_diverged(tmp_path: str) -> None:
    from harness import plan
    from harness.runner import RunOptions, run_sweep

    db = f"{tmp_path}/r.db"
    p = plan.build("fashion_mnist_resnet", f"{BAD_SUBMISSIONS}/loss_grows.py", budget=39)
    (s,) = run_sweep(p, RunOptions(results=db, progress=False, divergence_factor=3.0))
    losses = [r[0] for r in rows(db, "SELECT train_loss FROM evals ORDER BY step")]
    assert s.status == "diverged" and s.steps_done == 13 * len(losses), losses
    assert all(map(lambda x: x < 1e30, losses)) and losses[-1] > 3.0 * losses[0]
    (off,) = run_sweep(p, RunOptions(results=db, progress=False, divergence_factor=0.0, rerun=True))
    assert off.status == "completed"  # 0: only non-finite losses end a run


def test_bad_checkpoint_and_divergence_options_are_one_line_errors(tmp_path: str) -> None:
    from harness import plan
    from harness.runner import RunOptions, Sweep

    p, db = plan.build("fashion_mnist_lenet", "sgd", budget=2), f"{tmp_path}/r.db"
    not_a_dir = f"{tmp_path}/a_file"
    open(not_a_dir, "w").close()
    for options, expected in ((RunOptions(results=db, checkpoint_every=-1), "--checkpoint_every"),
                              (RunOptions(results=db, divergence_factor=-1.0), "--divergence_factor"),
                              (RunOptions(results=db, checkpoint_dir=f"{not_a_dir}/x"), "cannot write")):
        with pytest.raises(UserError, match=expected):
            Sweep(p, options)
    assert not os.path.exists(f"{tmp_path}/r.db")


def test_run_process_exit_codes_are_documented_in_the_readme() -> None:
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    assert "143" in readme and "130" in readme and "--checkpoint_every" in readme
