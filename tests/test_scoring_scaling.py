"""`python -m scoring scaling` (scoring/scaling.py): median steps to target against batch size per
series, from a small results database written through harness.store; the leaderboard's sections
per batch size; bad input as one line."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result, file_digest
from test_bad_input import assert_one_line_error

from harness import store
from scoring import aggregate, render, scaling

WORKLOAD = "fashion_mnist_resnet"
NESTEROV = '{"learning_rate":1.0}'


def write_row(conn, submission: str, batch: int, budget: int, steps: list[int | None], config_id: str,
              hparams: str = NESTEROV, target: float = 0.838) -> None:
    """One leaderboard row: a completed run per seed reaching the target at `steps[seed]` (None: missed)."""
    for seed, reached in enumerate(steps):
        rec = store.RunRecorder(conn, workload=WORKLOAD, submission=submission,
                                submission_path=f"submissions/{submission}/submission.py", submission_hash="c0de",
                                hparams=hparams, hparams_given=hparams, knobs="{}", config_id=config_id, seed=seed,
                                metric="accuracy", direction="maximize", target=target, step_budget=budget,
                                global_batch_size=batch, environment="{}")
        rec.finish("completed", steps_done=budget, steps_to_target=reached,
                   best_valid=0.85 if reached else 0.80, train_seconds=1.0)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """nesterov at 640, 1280, 2560 (plus a --budget=5 row at 2560), adamw at 640 and 1280 (a miss)."""
    path = str(tmp_path_factory.mktemp("scaling") / "results.db")
    conn = store.connect(path)
    write_row(conn, "nesterov", 640, 234, [104, 117, 130], "n640")
    write_row(conn, "nesterov", 1280, 117, [65, 78, 52], "n1280")
    write_row(conn, "nesterov", 2560, 59, [42, 49, 35], "n2560")
    write_row(conn, "nesterov", 2560, 5, [None, None, None], "n2560short")
    write_row(conn, "adamw", 640, 234, [156, 130, 143], "a640", hparams='{"learning_rate":0.003}')
    write_row(conn, "adamw", 1280, 117, [None, 91, None], "a1280", hparams='{"learning_rate":0.003}')
    conn.close()
    return path


def test_series_medians_and_perfect_scaling(db: str) -> None:
    s = scaling.load(db, WORKLOAD)
    points = s.points.set_index("config_id")
    assert points.loc["n640", "series"] == points.loc["n2560", "series"] == "nesterov learning_rate=1"
    assert points.loc["a640", "series"] == "adamw learning_rate=0.003"
    # medians over seeds; the adamw row at 1280 missed on 2 of 3 seeds: median inf
    assert points["median_steps"].to_dict() == {"a640": 143, "a1280": math.inf, "n640": 117, "n1280": 65,
                                                "n2560": 42, "n2560short": math.inf}
    # perfect scaling from the smallest batch: 117 x 640 / B
    assert points.loc["n1280", "perfect"] == 58.5 and points.loc["n2560", "perfect"] == 29.25
    assert points.loc["n2560", "efficiency"] == pytest.approx(29.25 / 42)
    assert points.loc["a1280", "perfect"] == 71.5 and math.isnan(points.loc["a1280", "efficiency"])
    # two rows of a series at one batch: the one with the larger budget is plotted
    assert bool(points.loc["n2560", "plotted"]) and not bool(points.loc["n2560short", "plotted"])
    lines = scaling.table(s).splitlines()
    assert any(line.split()[-3:] == ["inf", "72", "miss"] for line in lines if "a1280" in line)
    assert any(line.endswith("not plotted           -") for line in lines if "n2560short" in line)
    assert any(line.split()[-3:] == ["42", "29", "0.70"] for line in lines if " n2560 " in line)
    assert s.describe_target() == "accuracy 83.80%"


def test_the_perfect_line_starts_at_the_smallest_batch_that_reached(tmp_path: Path) -> None:
    path = str(tmp_path / "r.db")
    conn = store.connect(path)
    write_row(conn, "sgd", 640, 234, [None, None, 100], "s640")
    write_row(conn, "sgd", 1280, 117, [60, 70, 80], "s1280")
    write_row(conn, "sgd", 2560, 59, [40, 40, 40], "s2560", target=0.8)
    conn.close()
    points = scaling.load(path, WORKLOAD).points.set_index("config_id")
    # the 640 row missed (median inf): the line runs through 1280's 70 steps, 70 x 1280 / B
    assert points.loc["s640", "perfect"] == 140 and math.isnan(points.loc["s640", "efficiency"])
    assert points.loc["s2560", "perfect"] == 35 and points.loc["s1280", "efficiency"] == 1.0
    assert scaling.load(path, WORKLOAD).describe_target() == \
        "accuracy 83.80% at 640, 83.80% at 1280, 80.00% at 2560"


def test_command_prints_the_table_and_writes_the_plot(db: str, tmp_path: Path,
                                                      main_in_process: Callable[..., Result]) -> None:
    out = tmp_path / "plot.png"
    result = main_in_process("scoring", "scaling", f"--workload={WORKLOAD}", f"--results={db}", f"--out={out}")
    assert result.returncode == 0, result.stderr
    assert "nesterov learning_rate=1" in result.stdout and result.stdout.endswith(f"wrote {out}\n")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_leaderboard_ranks_within_each_batch_size(db: str) -> None:
    with store.ResultsReader(db) as reader:
        board = aggregate.leaderboard(reader.runs())
    assert [(b, r) for b, r in zip(board["global_batch_size"], board["rank"])] == \
        [(640, 1), (640, 2), (1280, 1), (1280, 2), (2560, 1), (2560, 2)]
    titles = [title for title, _ in render.sections(board)]
    fixed = "fixed hyperparameters: defaults or named configs, tuning not counted"
    assert titles == [f"{WORKLOAD}@batch={b} [{fixed}]" for b in (640, 1280, 2560)]
    assert "target 83.80%, batch 640" in render.terminal_table(board)


@pytest.mark.parametrize("args, expected", [
    ([], "scaling needs --workload=NAME"),
    ([f"--workload={WORKLOAD}", "--results=/nonexistent/r.db"],
     "results database /nonexistent/r.db does not exist"),
    (["--workload=imagenet_resnet50"], "no runs of workload 'imagenet_resnet50' in the results database; "
                                       "workloads present: fashion_mnist_resnet"),
    ([f"--workload={WORKLOAD}", "--out=/proc/nope/plot.png"], "cannot write /proc/nope/plot.png"),
])
def test_bad_input_is_one_line(args: list[str], expected: str, db: str,
                               main_in_process: Callable[..., Result]) -> None:
    before = file_digest(db)
    assert_one_line_error(main_in_process("scoring", "scaling", f"--results={db}", *args), expected)
    assert file_digest(db) == before


def test_no_finished_seed_is_one_line(tmp_path: Path, main_in_process: Callable[..., Result]) -> None:
    path = str(tmp_path / "r.db")
    conn = store.connect(path)
    store.RunRecorder(conn, workload=WORKLOAD, submission="nesterov", submission_path="x", hparams="{}",
                      knobs="{}", config_id="c", seed=0, metric="accuracy", direction="maximize", target=0.8,
                      step_budget=5, global_batch_size=640, environment="{}").finish("failed", error="boom")
    conn.close()
    result = main_in_process("scoring", "scaling", f"--workload={WORKLOAD}", f"--results={path}",
                             f"--out={tmp_path / 'p.png'}")
    assert result.returncode == 2 and result.stderr.startswith("error: no leaderboard row of fashion_mnist_resnet "
                                                               "has a finished seed yet")
    assert not os.path.exists(tmp_path / "p.png")
