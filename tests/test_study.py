"""Tuning studies (harness/study.py): selection, seeds, bad input, feasible counting, and resuming
after kill -9 at a trial and at a confirmation seed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from conftest import BAD_SUBMISSIONS, REPO, Result, file_digest

from harness.direction import Direction
from harness.study import TRIAL_SEED_BASE, Trial, score, select, trial_seed


def trial(index: int, best: float | None, steps: int | None = None, feasible: bool = True) -> Trial:
    return Trial(index, {}, trial_seed(0, index), index + 1, feasible, best, steps)


def test_select_by_best_valid_and_by_steps_to_target() -> None:
    trials = [trial(0, 0.80, 300), trial(1, 0.85, None), trial(2, 0.90, None, feasible=False),
              trial(3, 0.82, 200), trial(4, 0.83, 200)]
    assert select(trials, "best_valid", Direction.MAXIMIZE).index == 1  # the infeasible 0.90 never counts
    assert select(trials, "steps_to_target", Direction.MAXIMIZE).index == 4  # 200 steps, 0.83 > 0.82
    assert select(trials, "best_valid", Direction.MINIMIZE).index == 0
    assert select([trial(0, 0.5), trial(1, 0.5)], "best_valid", Direction.MAXIMIZE).index == 0  # tie: first
    assert select([trial(0, 0.9, feasible=False)], "best_valid", Direction.MAXIMIZE) is None


def test_trial_seeds_never_collide_with_confirmation_seeds() -> None:
    seeds = [trial_seed(s, i) for s in range(3) for i in range(200)]
    assert len(set(seeds)) == len(seeds)
    assert all(TRIAL_SEED_BASE <= x < 2 * TRIAL_SEED_BASE for x in seeds)
    assert trial_seed(5, 7) == trial_seed(5, 7)


def test_score_is_the_median_over_studies() -> None:
    from harness.study import Confirmation, StudyOutcome

    outcomes = [StudyOutcome(f"s/{i}", i, [], None, Confirmation(3, [], 0, m, False))
                for i, m in enumerate([0.7, 0.9, 0.8])]
    assert score(outcomes) == 0.8


# --- bad input: one line, exit 2, the database untouched ----------------------------------------------

TUNE = ["tune", "--workload=fashion_mnist_lenet", "--submission=nesterov", "--budget=2", "--progress=false"]


@pytest.mark.parametrize("args, message", [
    (["--confirm_seeds=2"], "`tune` needs --submission and --trials"),
    (["--trials=4", "--max_trials=3"], "--max_trials=3 is fewer than --trials=4"),
    (["--trials=2", "--select=fastest"], "flag --select=fastest"),
    (["--trials=2", "--confirm_seeds=-1"], "--confirm_seeds must be >= 0"),
    (["--trials=2", '--hparams={"learning_rate": 0.1}'], "learning_rate are both fixed"),
    (["--trials=2", "--search_space=nowhere.json"], "cannot read --search_space=nowhere.json"),
    (["--trials=2", "--stop_at_target"], "--stop_at_target does not go with `tune`"),
])
def test_bad_tune_input(args: list[str], message: str, results_db: str,
                        main_in_process: Callable[..., Result]) -> None:
    before = file_digest(results_db)
    result = main_in_process("harness", *TUNE, f"--results={results_db}", *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert file_digest(results_db) == before


@pytest.mark.parametrize("space, message", [
    ({"learning_rate": {"min": 0.0, "max": 1.0, "scaling": "log"}}, "log scaling needs min > 0"),
    ({"momentum": {"feasible_points": [0.9, 1.5]}}, "search space point"),  # nesterov's check_hparams
    ({"learning_rat": {"min": 0.1, "max": 1.0}}, "unknown hparam 'learning_rat'"),
])
def test_bad_search_space_fails_before_anything_runs(
        space: dict, message: str, results_db: str, tmp_path: str, main_in_process: Callable[..., Result]) -> None:
    path = os.path.join(tmp_path, "space.json")
    with open(path, "w") as f:
        json.dump(space, f)
    before = file_digest(results_db)
    result = main_in_process("harness", *TUNE, f"--results={results_db}", "--trials=4", "--max_trials=40",
                             f"--search_space={path}")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert file_digest(results_db) == before


def test_tune_flags_belong_to_tune(results_db: str, main_in_process: Callable[..., Result]) -> None:
    result = main_in_process("harness", "run", "--workload=fashion_mnist_lenet", "--submission=nesterov",
                             "--trials=3", f"--results={results_db}")
    assert result.returncode == 2 and "--trials is a flag of `tune`" in result.stderr


def test_branching_on_a_traced_hparam_is_a_one_line_error(results_db: str,
                                                          main_in_process: Callable[..., Result]) -> None:
    result = main_in_process("harness", "run", "--workload=fashion_mnist_lenet", "--budget=1",
                             f"--submission={BAD_SUBMISSIONS}/branches_on_lr.py", f"--results={results_db}")
    assert result.returncode == 2 and "branches in Python on a traced hparam" in result.stderr
    assert "STATIC_HPARAMS" in result.stderr


# --- studies that train ----------------------------------------------------------------------------


def rows(db: str, sql: str, *args: object) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_diverged_trials_are_infeasible_and_do_not_count(tmp_path: str, main_in_process: Callable[..., Result]
                                                         ) -> None:
    from harness.search_space import parse

    space = {"learning_rate": {"feasible_points": [0.05, 5.0]}}
    path, db = os.path.join(tmp_path, "space.json"), os.path.join(tmp_path, "r.db")
    with open(path, "w") as f:
        json.dump(space, f)
    result = main_in_process("harness", "tune", "--workload=fashion_mnist_lenet",
                             f"--submission={BAD_SUBMISSIONS}/diverges_above.py", "--budget=2", "--trials=3",
                             "--confirm_seeds=2", f"--search_space={path}", f"--results={db}", "--study=div",
                             "--progress=false")
    assert result.returncode == 0, result.stderr[-2000:]
    points = parse(space, {"learning_rate": 0.1, "momentum": 0.0}, "d", "t")
    lrs = [points.point(0, i)["learning_rate"] for i in range(9)]
    expected_trials = next(i + 1 for i in range(9) if sum(lr < 1 for lr in lrs[:i + 1]) == 3)
    trials = rows(db, "SELECT trial, feasible FROM study_trials ORDER BY trial")
    assert [bool(f) for _, f in trials] == [lr < 1 for lr in lrs[:expected_trials]]
    assert sum(f for _, f in trials) == 3 and len(trials) > 3  # the points at 5.0 diverged
    statuses = rows(db, "SELECT status FROM runs WHERE study_role = 'trial' ORDER BY run_id")
    assert [s for (s,) in statuses] == ["completed" if lr < 1 else "diverged" for lr in lrs[:expected_trials]]
    (name, status, feasible_wanted, rule) = rows(db, "SELECT name, status, trials, select_rule FROM studies")[0]
    assert (name, status, feasible_wanted, rule) == ("div", "done", 3, "best_valid")
    assert "3 feasible of" in result.stdout and "confirmation on 2 seeds" in result.stdout
    assert rows(db, "SELECT seed FROM runs WHERE study_role = 'confirmation' ORDER BY seed") == [(0,), (1,)]


def _wait_and_kill(proc: subprocess.Popen, db: str, sql: str, timeout: float = 300) -> None:
    """SIGKILL `proc` as soon as the query returns a row (a run of the wanted kind is running)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"the study ended before it could be killed: {proc.communicate()[1][-2000:]!r}"
        try:
            if os.path.exists(db) and rows(db, sql):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return
        except sqlite3.OperationalError:
            pass  # tables not there yet
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("timed out waiting for the study to reach the kill point")


@pytest.mark.slow
@pytest.mark.cli
def test_a_killed_study_resumes_without_repeating_or_missing_a_run(tmp_path: str) -> None:
    space, db = os.path.join(tmp_path, "space.json"), os.path.join(tmp_path, "r.db")
    with open(space, "w") as f:
        json.dump({"learning_rate": {"min": 0.01, "max": 0.1, "scaling": "log"},
                   "momentum": {"feasible_points": [0.9, 0.95]}}, f)
    command = [sys.executable, "-m", "harness", "tune", "--workload=fashion_mnist_lenet",
               "--submission=nesterov", "--budget=3", "--trials=3", "--confirm_seeds=3", f"--search_space={space}",
               f"--results={db}", "--study=resume", "--progress=false"]
    # 1: killed while trial 2 runs (trial 1 recorded)
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_and_kill(proc, db, "SELECT 1 FROM runs WHERE study_role = 'trial' AND status = 'running' AND "
                             "(SELECT COUNT(*) FROM study_trials) >= 1")
    # 2: killed while confirmation seed 1 runs (seed 0 finished)
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_and_kill(proc, db, "SELECT 1 FROM runs WHERE study_role = 'confirmation' AND status = 'running' AND "
                             "seed = 1")
    # 3: the same command completes the study
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 feasible of 3 trials" in done.stdout and "confirmation on 3 seeds" in done.stdout
    trials = rows(db, "SELECT trial, seed, run_id FROM study_trials ORDER BY trial")
    assert [t for t, _, _ in trials] == [0, 1, 2]
    finished = rows(db, "SELECT study_role, seed, COUNT(*) FROM runs WHERE status IN ('completed', 'diverged') "
                        "GROUP BY study_role, seed")
    assert all(count == 1 for _, _, count in finished)  # no run repeated
    assert sorted(seed for role, seed, _ in finished if role == "confirmation") == [0, 1, 2]  # none missing
    assert sorted(seed for role, seed, _ in finished if role == "trial") == sorted(s for _, s, _ in trials)
    killed = rows(db, "SELECT study_role, seed FROM runs WHERE status = 'interrupted' ORDER BY run_id")
    assert [role for role, _ in killed] == ["trial", "confirmation"] and killed[1][1] == 1
    assert rows(db, "SELECT status FROM studies") == [("done",)]
    # the study's report and plots
    report = subprocess.run([sys.executable, "-m", "scoring", "study", "--study=resume", f"--results={db}",
                             f"--out={tmp_path}/s"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "3 feasible of 3 trials" in report.stdout and "confirmation: 3 of 3 seeds" in report.stdout
    for suffix in ("hparams", "best_so_far", "confirmation"):
        with open(f"{tmp_path}/s_{suffix}.png", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # the leaderboard: one row from the confirmation runs (3 seeds), the trials left out
    board = subprocess.run([sys.executable, "-m", "scoring", "leaderboard", f"--results={db}",
                            f"--out={tmp_path}/lb"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert board.returncode == 0, board.stderr[-2000:]
    assert "fashion_mnist_lenet [tuned, 3 feasible trials per study]" in board.stdout
    assert "tuned: 3 feasible of 3 trials, search space" in board.stdout
    assert "fixed hyperparameters" not in board.stdout
    with open(f"{tmp_path}/lb.md") as f:
        markdown = f.read()
    ranked = [line for line in markdown.splitlines() if line.startswith(("| 1 |", "| 2 |"))]
    # 3 seeds; the interrupted attempt of seed 1 is superseded by its re-run (the last column)
    cells = [c.strip() for c in ranked[0].strip("|").split("|")]
    assert len(ranked) == 1 and "(study resume)" in cells[3] and cells[4] == "3"
    assert cells[-5:] == ["0", "0", "0", "0", "1"]  # diverged, failed, interrupted, running, superseded


@pytest.mark.slow
def test_a_study_is_resumed_only_with_the_code_it_started_with(tmp_path: str,
                                                                main_in_process: Callable[..., Result]) -> None:
    space, db = os.path.join(tmp_path, "space.json"), os.path.join(tmp_path, "r.db")
    with open(space, "w") as f:
        json.dump({"learning_rate": {"min": 0.01, "max": 0.1, "scaling": "log"}}, f)
    command = ["harness", "tune", "--workload=fashion_mnist_lenet", "--submission=nesterov", "--budget=2",
               "--trials=1", "--confirm_seeds=1", f"--search_space={space}", f"--results={db}", "--study=code",
               "--progress=false"]
    assert main_in_process(*command).returncode == 0
    (seconds,) = rows(db, "SELECT wall_seconds, compile_seconds FROM studies")
    assert seconds[0] > seconds[1] > 0  # the data loading and the compilation count in the study
    # As if the study's runs had been made by other code (an edit since): while the study is not
    # finished, the same command refuses to mix the two versions; once finished, it only reports.
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE runs SET submission_hash = 'c0ffee000000', git_revision = 'abc1234'")
        conn.execute("UPDATE studies SET status = 'confirming'")
    conn.close()
    refused = main_in_process(*command)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert ("study code ran with submission code c0ffee000000 (git revision abc1234) but the code loaded now "
            "is ") in refused.stderr and "`git worktree add DIR abc1234`" in refused.stderr
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE studies SET status = 'done'")
    conn.close()
    assert main_in_process(*command).returncode == 0
    assert rows(db, "SELECT COUNT(*) FROM runs") == [(2,)]  # nothing ran again
    assert rows(db, "SELECT wall_seconds, compile_seconds FROM studies") == [seconds]  # nor counted time
