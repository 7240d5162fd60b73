"""Tests of the scoring package against a synthetic results store written through harness.store."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import spec, store
from scoring import aggregate, compare, profile, render, statistics

REPO = Path(__file__).resolve().parent.parent
INF = math.inf
EVAL_EVERY = 100
BUDGET = 1000


@dataclass(frozen=True)
class Spec:
    """One synthetic run: the step at which it reaches the target (None: never) and its fate."""

    seed: int
    reach: int | None
    status: str = "completed"  # completed | diverged | failed | running
    stop: int = BUDGET  # last eval step (diverged / failed / running runs stop early)
    best_offset: float = 0.0  # shifts the metric curve (to control best_valid)


def config_id(submission: str, hparams: dict, knobs: dict) -> str:
    blob = store.canonical_json({"submission": submission, "hparams": hparams, "knobs": knobs})
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def metric_at(step: int, run: Spec, target: float, direction: str) -> float:
    """A validation metric curve that first reaches ``target`` exactly at ``run.reach``."""
    sign = 1.0 if direction == "maximize" else -1.0
    if run.reach is not None and step >= run.reach:
        return target + sign * (0.005 + 0.00001 * (step - run.reach))
    return target - sign * (0.1 - 0.05 * step / BUDGET + run.best_offset)


def write_config(conn, workload: str, submission: str, hparams: dict, metric: str, direction: str,
                 target: float, runs: list[Spec]) -> str:
    knobs = {"batch_size": 128}
    cid = config_id(submission, hparams, knobs)
    for run in runs:
        rec = store.RunRecorder(
            conn, workload=workload, submission=submission,
            submission_path=f"submissions/{submission}.py", hparams=store.canonical_json(hparams),
            hparams_given=store.canonical_json(hparams),
            knobs=store.canonical_json(knobs), config_id=cid, seed=run.seed, metric=metric,
            direction=direction, target=target, step_budget=BUDGET, global_batch_size=128,
            environment=store.canonical_json({"jax": "0.4.30", "devices": ["cpu"]}),
            git_revision="abc1234")
        evals = []
        for step in range(0, run.stop + 1, EVAL_EVERY):
            diverging = run.status == "diverged" and step == run.stop
            vals = dict(train_loss=math.nan if diverging else 2.0 / (1 + step / 100),
                        train_metric=metric_at(step, run, target, direction) + 0.01,
                        valid_loss=1.5 / (1 + step / 100),
                        valid_metric=metric_at(step, run, target, direction),
                        test_loss=1.6 / (1 + step / 100),
                        test_metric=metric_at(step, run, target, direction) - 0.002)
            rec.record_eval(step, step * 0.01, **vals)
            evals.append({"step": step, "train_seconds": step * 0.01, **vals})
        if run.status == "running":
            continue
        frame = pd.DataFrame(evals)
        hit = aggregate.time_to_target(frame, target, direction)
        valid = frame["valid_metric"]
        best = valid.max() if direction == "maximize" else valid.min()
        summary = dict(steps_to_target=hit[0] if hit else None,
                       seconds_to_target=hit[1] if hit else None,
                       best_valid=float(best), final_valid=float(valid.iloc[-1]),
                       final_test=float(frame["test_metric"].iloc[-1]),
                       final_train=float(frame["train_metric"].iloc[-1]),
                       train_seconds=float(frame["train_seconds"].iloc[-1]), compile_seconds=3.2)
        if run.status in ("failed", "interrupted"):
            summary = {"error": "RuntimeError: out of memory"} if run.status == "failed" else {}
        rec.finish(run.status, **summary)
    return cid


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A closed results database: two workloads, five configurations."""
    path = tmp_path_factory.mktemp("results") / "results.db"
    conn = store.connect(str(path))
    ids = {
        # 3 finished seeds reaching at 300/400/500 (median 400) + one still running.
        "adamw": write_config(conn, "mnist", "adamw", {"lr": 1e-3, "weight_decay": 1e-4}, "accuracy",
                              "maximize", 0.97,
                              [Spec(0, 300), Spec(1, 400), Spec(2, 500),
                               Spec(3, None, "running", stop=200)]),
        # 2 of 3 reach (200, 600, miss): median 600.
        "sgd": write_config(conn, "mnist", "sgd", {"lr": 0.1, "nesterov": True}, "accuracy",
                            "maximize", 0.97, [Spec(0, 200), Spec(1, 600), Spec(2, None)]),
        # 1 of 3 reaches, one diverged, one missed, one failed: median inf.
        "momentum": write_config(conn, "mnist", "momentum", {"lr": 0.5, "beta": 0.9}, "accuracy",
                                 "maximize", 0.97,
                                 [Spec(0, 100), Spec(1, None, "diverged", stop=300), Spec(2, None),
                                  Spec(3, None, "failed", stop=0)]),
        # minimize, both miss; best valid (lower is better): 3.55+offsets.
        "lamb": write_config(conn, "wmt", "lamb", {"lr": 2e-3}, "loss", "minimize", 3.5,
                             [Spec(0, None, best_offset=0.0), Spec(1, None, best_offset=0.01),
                              Spec(2, None, best_offset=0.02)]),
        "adafactor": write_config(conn, "wmt", "adafactor", {"lr": 1e-2}, "loss", "minimize", 3.5,
                                  [Spec(0, None, best_offset=0.03), Spec(1, None, best_offset=0.04),
                                   Spec(2, None, best_offset=0.05)]),
    }
    conn.close()
    return path, ids


@pytest.fixture(scope="module")
def board(db) -> pd.DataFrame:
    path, _ = db
    with store.ResultsReader(str(path)) as results:
        return aggregate.leaderboard(results.runs())


def row(board: pd.DataFrame, submission: str) -> pd.Series:
    rows = board[board["submission"] == submission]
    assert len(rows) == 1
    return rows.iloc[0]


# --- pure statistics -----------------------------------------------------------------------------


def test_median_with_misses() -> None:
    assert aggregate.median_with_misses([100, None]) == INF
    assert aggregate.median_with_misses([100, 200, None]) == 200
    assert aggregate.median_with_misses([100, float("nan"), None]) == INF
    assert aggregate.median_with_misses([300, 100, 200, 400]) == 250
    assert math.isnan(aggregate.median_with_misses([]))


def test_wilson_interval() -> None:
    low, high = statistics.wilson_interval(35, 50)  # LARS in Nado et al.: 35 of 50 seeds
    assert (round(low, 2), round(high, 2)) == (0.56, 0.81)
    # by hand: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n), p = 3/5, z = 1.959964
    z, n, p = 1.959963984540054, 5, 0.6
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert statistics.wilson_interval(3, 5) == pytest.approx(((centre - half) / (1 + z * z / n),
                                                              (centre + half) / (1 + z * z / n)))
    assert all(math.isnan(v) for v in statistics.wilson_interval(0, 0))


def test_median_interval_is_between_order_statistics() -> None:
    # n = 20: the 95% interval of the median is [x(6), x(15)] (binomial(20, 1/2): P(6 <= B <= 14) >= 0.95)
    values = [float(v) for v in range(1, 21)]
    assert statistics.median_interval(values) == (6.0, 15.0, 0.95)
    # misses are inf: the upper end is inf as soon as x(15) is a miss
    assert statistics.median_interval([100.0] * 10 + [INF] * 10)[:2] == (100.0, INF)
    # 5 seeds: no pair covers 95%; [min, max] at 1 - 2 / 2^5 = 93.75%
    assert statistics.median_interval([300, 400, 500, INF, 350]) == (300.0, INF, 0.9375)
    assert all(math.isnan(v) for v in statistics.median_interval([]))


def test_paired_tests() -> None:
    assert statistics.sign_test([1, 2, 3, 4, 5]) == pytest.approx(2 * 0.5 ** 5)
    assert statistics.sign_test([1, -1, 0]) == pytest.approx(1.0)  # the tie is dropped
    assert math.isnan(statistics.sign_test([0, 0]))
    # Wilcoxon, exact: ranks 1..5 all positive: p = 2 / 2^5
    assert statistics.wilcoxon_test([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(2 / 32)


def test_time_to_target_first_eval_reaching() -> None:
    evals = pd.DataFrame({"step": [0, 100, 200, 300], "train_seconds": [0.0, 1.0, 2.0, 3.0],
                          "valid_metric": [0.5, 0.97, 0.96, 0.99]})
    assert aggregate.time_to_target(evals, 0.97, "maximize") == (100, 1.0)
    assert aggregate.time_to_target(evals, 0.995, "maximize") is None
    assert aggregate.time_to_target(evals, 0.6, "minimize") == (0, 0.0)
    assert aggregate.time_to_target(evals, 0.4, "minimize") is None


def test_compact_hparams() -> None:
    assert aggregate.compact_hparams('{"wd":0.0001,"lr":0.001,"nesterov":true,"warmup":10}') == \
        "lr=0.001,nesterov=true,warmup=10,wd=0.0001"


def test_sort_respects_direction() -> None:
    frame = pd.DataFrame({
        "workload": ["max", "max", "min", "min", "min"],
        "submission": ["a", "b", "c", "d", "e"], "config_id": ["1", "2", "3", "4", "5"],
        "direction": ["maximize", "maximize", "minimize", "minimize", "minimize"],
        "median_steps": [INF, INF, INF, INF, 500.0],
        "median_best_valid": [0.90, 0.95, 3.9, 3.6, 4.5],
        "tuning_budget": [0] * 5, "study_id": [-1] * 5, "finished": [3] * 5, "global_batch_size": [128] * 5,
    })
    ranked = aggregate.sort_leaderboard(frame)
    assert list(ranked["submission"]) == ["b", "a", "e", "d", "c"]
    assert list(ranked["rank"]) == [1, 2, 1, 2, 3]


def test_rows_rank_only_against_equal_tuning_budgets() -> None:
    """A tuned row is not ranked against hand-set rows, nor against rows tuned with another budget."""
    frame = pd.DataFrame({
        "workload": ["w"] * 4, "submission": ["a", "b", "c", "d"], "config_id": ["1", "2", "3", "4"],
        "direction": ["maximize"] * 4, "median_steps": [INF, 100.0, 300.0, 200.0],
        "median_best_valid": [0.9, 0.8, 0.7, 0.75], "tuning_budget": [0, 0, 16, 8],
        "study_id": [-1, -1, 1, 2], "finished": [3] * 4, "global_batch_size": [128] * 4,
    })
    ranked = aggregate.sort_leaderboard(frame)
    assert list(ranked["submission"]) == ["c", "d", "b", "a"]  # budgets 16, 8, then fixed
    assert list(ranked["rank"]) == [1, 1, 1, 2]
    assert [title for title, _ in render.sections(ranked)] == [
        "w [tuned, 16 feasible trials per study]", "w [tuned, 8 feasible trials per study]",
        "w [fixed hyperparameters: defaults or named configs, tuning not counted]"]


# --- the leaderboard from the database -----------------------------------------------------------


def test_leaderboard_rows(board: pd.DataFrame, db) -> None:
    _, ids = db
    assert list(board.columns) == list(aggregate.LEADERBOARD_COLUMNS)
    assert len(board) == 5

    adamw = row(board, "adamw")
    assert adamw["config_id"] == ids["adamw"]
    assert adamw["hparams"] == "lr=0.001,weight_decay=0.0001"
    # seed 3 still running: not counted yet
    assert (adamw["seeds"], adamw["running"], adamw["failed"], adamw["diverged"]) == (3, 1, 0, 0)
    assert adamw["reached"] == "3/3" and adamw["success"] == 1.0
    assert (adamw["success_ci_low"], adamw["success_ci_high"]) == pytest.approx(statistics.wilson_interval(3, 3))
    assert adamw["median_steps"] == 400.0
    assert adamw["median_seconds_to_target"] == pytest.approx(4.0)
    assert (adamw["steps_ci_low"], adamw["steps_ci_high"], adamw["steps_ci_level"]) == (300.0, 500.0, 0.75)
    assert adamw["median_best_valid"] == pytest.approx(0.97 + 0.005 + 0.00001 * 600)
    assert adamw["median_final_test"] == pytest.approx(0.97 + 0.005 + 0.00001 * 600 - 0.002)
    assert adamw["median_final_train"] == pytest.approx(0.97 + 0.005 + 0.00001 * 600 + 0.01)
    assert adamw["median_train_seconds"] == pytest.approx(10.0)

    sgd = row(board, "sgd")
    assert sgd["reached"] == "2/3" and sgd["success"] == pytest.approx(2 / 3)
    assert (sgd["seeds"], sgd["running"], sgd["failed"], sgd["diverged"]) == (3, 0, 0, 0)
    assert sgd["median_steps"] == 600.0
    assert sgd["median_seconds_to_target"] == pytest.approx(6.0)
    assert (sgd["steps_ci_low"], sgd["steps_ci_high"]) == (200.0, INF)

    momentum = row(board, "momentum")
    # the failed seed 3 counts as a miss: a crash must not improve a row
    assert momentum["reached"] == "1/4"
    assert (momentum["seeds"], momentum["failed"], momentum["diverged"]) == (4, 1, 1)
    assert momentum["median_steps"] == INF
    assert momentum["median_seconds_to_target"] == INF
    assert momentum["steps_ci_low"] == 100.0 and momentum["steps_ci_high"] == INF

    for _, r in board.iterrows():
        assert r["steps_ci_low"] <= r["median_steps"] <= r["steps_ci_high"]


def test_a_seed_counts_once_by_its_latest_attempt(tmp_path: Path) -> None:
    """Re-running a seed neither adds a seed nor shifts the median; a killed latest attempt is a miss
    until the seed is run again to completion (issue 13; the old code counted every finished run)."""
    path = str(tmp_path / "r.db")
    conn = store.connect(path)
    write_config(conn, "w", "rerun", {"lr": 1.0}, "accuracy", "maximize", 0.97,
                 [Spec(0, 300), Spec(1, None), Spec(1, 200)])  # seed 1 again: the latest reaches at 200
    write_config(conn, "w", "killed", {"lr": 2.0}, "accuracy", "maximize", 0.97,
                 [Spec(0, 100), Spec(1, 100), Spec(1, None, "interrupted", stop=100)])
    write_config(conn, "w", "resumed", {"lr": 3.0}, "accuracy", "maximize", 0.97,
                 [Spec(0, 100), Spec(1, None, "interrupted", stop=100), Spec(1, 300)])
    conn.close()
    with store.ResultsReader(path) as results:
        board = aggregate.leaderboard(results.runs())
    rerun, killed, resumed = (row(board, s) for s in ("rerun", "killed", "resumed"))
    assert (rerun["seeds"], rerun["reached"], rerun["median_steps"], rerun["superseded"]) == (2, "2/2", 250.0, 1)
    assert (killed["seeds"], killed["reached"], killed["median_steps"]) == (2, "1/2", INF)
    assert (killed["interrupted"], killed["superseded"]) == (1, 1)
    assert (resumed["seeds"], resumed["reached"], resumed["interrupted"]) == (2, "2/2", 0)
    assert resumed["superseded"] == 1
    assert not math.isnan(killed["best_valid_ci_low"])  # the finished seed still has a best valid


def test_a_row_without_a_finished_seed_is_not_ranked(tmp_path: Path) -> None:
    """A row whose seeds are all running (or all failed) has nothing measured: it is listed after the
    ranked rows without a rank, not ranked as a failure, and not scored in the performance profile
    (issue 14; the old code ranked it last and gave its submission B = 0)."""
    path = str(tmp_path / "r.db")
    conn = store.connect(path)
    write_config(conn, "w", "slow", {"lr": 1.0}, "accuracy", "maximize", 0.97, [Spec(0, None), Spec(1, 900)])
    write_config(conn, "w", "inprog", {"lr": 2.0}, "accuracy", "maximize", 0.97,
                 [Spec(0, None, "running", stop=200)])
    write_config(conn, "w", "crashed", {"lr": 3.0}, "accuracy", "maximize", 0.97,
                 [Spec(0, None, "failed", stop=0)])
    conn.close()
    with store.ResultsReader(path) as results:  # this process wrote them: its runs are still running
        board = aggregate.leaderboard(results.runs())
    assert list(board["submission"]) == ["slow", "crashed", "inprog"]
    assert board["rank"].iloc[0] == 1 and board["rank"].iloc[1:].isna().all()
    inprog = row(board, "inprog")
    assert (inprog["seeds"], inprog["finished"], inprog["running"], inprog["failed"], inprog["interrupted"]) == \
        (0, 0, 1, 0, 0)

    lines = render.terminal_table(board).splitlines()
    table_row = next(line for line in lines if " inprog " in line)
    assert table_row.startswith("-  inprog") and table_row.split()[-2:] == ["0", "0"]  # no rank; div, inc 0
    assert f"  #- {inprog['config_id']}: not ranked, no finished seed yet (1 running); lr=2" in lines
    assert any(line.endswith("not ranked, no finished seed yet (1 failed); lr=3") for line in lines)
    md = render.markdown_report(board)
    assert f"| - | inprog | {inprog['config_id']} | lr=2 | 0 | 0/0 |" in md
    assert f"inprog [{inprog['config_id']}]: not ranked, no finished seed yet (1 running)" in md

    scores = profile.build(board)
    assert list(scores.scores.index) == ["slow"]  # nothing finished: not scored as B = 0
    assert compare.with_rows_above(results_runs(path), board) == {}  # an unranked row has no row above


def results_runs(path: str) -> pd.DataFrame:
    with store.ResultsReader(path) as results:
        return results.runs()


def test_a_submission_in_progress_on_one_workload_is_labelled_so_in_the_profile(tmp_path: Path) -> None:
    path = str(tmp_path / "r.db")
    conn = store.connect(path)
    for workload in ("w1", "w2"):
        write_config(conn, workload, "done", {"lr": 1.0}, "accuracy", "maximize", 0.97, [Spec(0, 300)])
    write_config(conn, "w1", "half", {"lr": 2.0}, "accuracy", "maximize", 0.97, [Spec(0, 600)])
    write_config(conn, "w2", "half", {"lr": 2.0}, "accuracy", "maximize", 0.97,
                 [Spec(0, None, "running", stop=100)])
    conn.close()
    scores = profile.build(aggregate.leaderboard(results_runs(path)))
    assert scores.chosen.loc["half", "w2"] == profile.IN_PROGRESS
    assert scores.ratios.loc["half", "w1"] == 2.0 and scores.ratios.loc["half", "w2"] == INF
    assert scores.scores["half"] == pytest.approx((4 - 2) / 3 / 2)


def test_leaderboard_sorting(board: pd.DataFrame) -> None:
    mnist = board[board["workload"] == "mnist"]
    assert list(mnist["submission"]) == ["adamw", "sgd", "momentum"]
    assert list(mnist["rank"]) == [1, 2, 3]
    wmt = board[board["workload"] == "wmt"]
    # both miss the target: ranked by median best valid loss, lower first (direction minimize)
    assert list(wmt["submission"]) == ["lamb", "adafactor"]
    assert list(wmt["direction"].unique()) == ["minimize"]
    assert wmt.iloc[0]["median_best_valid"] == pytest.approx(3.5 + 0.1 - 0.05 + 0.01)
    assert wmt.iloc[0]["median_best_valid"] < wmt.iloc[1]["median_best_valid"]
    assert list(wmt["reached"]) == ["0/3", "0/3"]
    assert (wmt["median_steps"] == INF).all()


def test_select_workload(db) -> None:
    path, _ = db
    with store.ResultsReader(str(path)) as results:
        runs = results.runs()
    assert set(aggregate.select_workload(runs, "wmt")["workload"]) == {"wmt"}
    with pytest.raises(spec.UserError, match="mnist, wmt"):
        aggregate.select_workload(runs, "imagenet")
    with pytest.raises(spec.UserError):
        aggregate.select_workload(runs.iloc[0:0], None)


def test_learning_curves(db) -> None:
    path, ids = db
    with store.ResultsReader(str(path)) as results:
        curves = aggregate.learning_curves(results.runs(), results.evals())
    adamw = curves[curves["config_id"] == ids["adamw"]].set_index("step")
    assert list(adamw.index) == list(range(0, BUDGET + 1, EVAL_EVERY))
    assert (adamw["seeds"] == 3).all()  # the running seed is excluded
    # at step 400: seed 0 (reached at 300), seed 1 (reached now), seed 2 (still below)
    assert adamw.loc[400, "valid_median"] == pytest.approx(0.975)
    assert adamw.loc[400, "valid_max"] == pytest.approx(0.976)
    assert adamw.loc[400, "valid_min"] == pytest.approx(0.97 - 0.1 + 0.05 * 400 / BUDGET)
    momentum = curves[curves["config_id"] == ids["momentum"]].set_index("step")
    assert momentum.loc[300, "seeds"] == 3 and momentum.loc[400, "seeds"] == 2
    assert np.isfinite(momentum["train_loss_median"]).all()


# --- rendering -----------------------------------------------------------------------------------


def test_terminal_table(board: pd.DataFrame) -> None:
    text = render.terminal_table(board)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert "fewer than 20 seeds: their intervals are wide" in " ".join(text.split())
    assert " adamw " in text and " momentum " in text  # names not cut
    assert "97.00%" in text  # accuracy target as a percent
    assert "3.5000" in text  # loss target as a plain number
    adamw = next(line for line in lines if " adamw " in line)
    assert "3/3" in adamw and "400" in adamw and "[300, 500]" in adamw
    momentum = next(line for line in lines if " momentum " in line)
    assert "1/4" in momentum and " inf " in momentum
    # percents with 2 decimals for accuracy
    best = row(board, "adamw")["median_best_valid"]
    assert f"{100 * best:.2f}%" in adamw


def test_fixed_width_table_shrinks() -> None:
    lines = render.fixed_width_table(("name", "value"), [("x" * 200, "1")], "<>", shrinkable=(0,),
                                     width=40)
    assert max(len(line) for line in lines) <= 40
    assert lines[2].startswith("x" * 30) and "…" in lines[2]


def test_markdown_table() -> None:
    text = render.markdown_table(("a", "b"), [("1|2", "3")], frozenset({1}))
    assert text.splitlines() == ["| a | b |", "| --- | ---: |", "| 1\\|2 | 3 |"]


def test_write_reports(board: pd.DataFrame, db, tmp_path: Path) -> None:
    path, ids = db
    with store.ResultsReader(str(path)) as results:
        curves = aggregate.learning_curves(results.runs(), results.evals())
    out = tmp_path / "sub" / "leaderboard"
    paths = render.write_reports(board, curves, str(out))
    expected = [f"{out}.md", f"{out}.html", f"{out}_mnist.png", f"{out}_wmt.png"]
    assert paths == expected
    for p in expected:
        assert Path(p).stat().st_size > 0
    for p in expected[2:]:
        assert Path(p).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    md = Path(f"{out}.md").read_text()
    assert "## mnist" in md and "## wmt" in md
    assert (f"| 1 | adamw | {ids['adamw']} | lr=0.001,weight_decay=0.0001 | 3 | 3/3 | 100% | [44%, 100%] | "
            "400 | [300, 500]* |") in md
    assert f"| 2 | sgd | {ids['sgd']} |" in md and "| 2/3 | 67% | [21%, 94%] | 600 | [200, inf]* |" in md
    assert f"| 3 | momentum | {ids['momentum']} |" in md

    page = Path(f"{out}.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert page.count("data:image/png;base64,") == 2
    assert "<link" not in page and "<script" not in page  # self-contained
    for cid in ids.values():
        assert f"<td>{cid}</td>" in page
    assert "lr=0.001,weight_decay=0.0001" in page


# --- CLI -----------------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scoring", "leaderboard", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def snapshot(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.mark.cli
def test_cli_missing_db(tmp_path: Path) -> None:
    proc = run_cli(f"--results={tmp_path / 'nope.db'}", f"--out={tmp_path / 'lb'}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "does not exist" in lines[0]
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.cli
def test_cli_unknown_workload(db, tmp_path: Path) -> None:
    path, _ = db
    proc = run_cli("--workload=imagenet", f"--results={path}", f"--out={tmp_path / 'lb'}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "imagenet" in lines[0] and "mnist, wmt" in lines[0]


@pytest.mark.cli
def test_cli_unknown_command(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "scoring", "frobnicate"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.cli
def test_cli_does_not_modify_db(db, tmp_path: Path) -> None:
    path, ids = db
    before = snapshot(path)
    out = tmp_path / "lb"
    proc = run_cli("--workload=mnist", f"--results={path}", f"--out={out}")
    assert proc.returncode == 0, proc.stderr
    assert "== mnist" in proc.stdout and "wmt" not in proc.stdout
    assert ids["adamw"] in proc.stdout
    assert f"wrote {out}.md" in proc.stdout and f"wrote {out}_mnist.png" in proc.stdout
    assert (tmp_path / "lb.html").exists() and (tmp_path / "lb_mnist.png").exists()
    assert not (tmp_path / "lb_wmt.png").exists()
    assert snapshot(path) == before
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # the reader wrote no pages
    # and in-process scoring leaves it untouched too
    with store.ResultsReader(str(path)) as results:
        aggregate.leaderboard(results.runs())
    assert snapshot(path) == before
    assert os.access(path, os.R_OK)


@pytest.mark.parametrize("command", [
    ["leaderboard"], ["profile"], ["study", "--study=s"], ["diagnostics", "--run=1"],
    ["discover-schedule", "--run=1", "--first_steps=1"], ["compare", "--workload=w", "--a=x", "--b=y"]])
def test_a_directory_as_results_is_a_one_line_error(command: list[str], tmp_path: Path, main_in_process) -> None:
    results = tmp_path / "results"
    results.mkdir()
    out = main_in_process("scoring", *command, f"--results={results}", f"--out={tmp_path / 'out'}")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [f"error: results path {results} is a directory; pass --results=FILE.db"]
    assert list(results.iterdir()) == [] and not (tmp_path / "out").exists()


def test_rescore_recomputes_time_to_target_from_evals() -> None:
    runs = pd.DataFrame([
        {"run_id": 1, "workload": "w", "global_batch_size": 128, "direction": "maximize", "target": 0.5,
         "steps_to_target": 10.0, "seconds_to_target": 1.0},
        {"run_id": 2, "workload": "w", "global_batch_size": 128, "direction": "maximize", "target": 0.5,
         "steps_to_target": 20.0, "seconds_to_target": 2.0},
        {"run_id": 3, "workload": "other", "global_batch_size": 128, "direction": "minimize", "target": 0.1,
         "steps_to_target": 5.0, "seconds_to_target": 0.5}])
    evals = pd.DataFrame([
        {"run_id": 1, "step": 10, "train_seconds": 1.0, "valid_metric": 0.55},
        {"run_id": 1, "step": 20, "train_seconds": 2.0, "valid_metric": 0.62},
        {"run_id": 2, "step": 20, "train_seconds": 2.5, "valid_metric": 0.51},
        {"run_id": 2, "step": 30, "train_seconds": 3.5, "valid_metric": 0.58}])
    out = aggregate.rescore(runs, evals, {"w": 0.6})
    assert out["target"].tolist() == [0.6, 0.6, 0.1]
    assert out.loc[0, "steps_to_target"] == 20 and out.loc[0, "seconds_to_target"] == 2.0
    assert math.isnan(out.loc[1, "steps_to_target"]) and math.isnan(out.loc[1, "seconds_to_target"])
    assert out.loc[2, "steps_to_target"] == 5  # workload without a new target: unchanged
    assert runs.loc[1, "steps_to_target"] == 20  # the input is not modified
    lower = aggregate.rescore(runs, evals, {"w": 0.5})
    assert lower["steps_to_target"].tolist()[:2] == [10, 20]
