"""Performance profiles and the benchmark score (scoring/profile.py, hand-computed), and paired
comparisons of two rows seed by seed (scoring/compare.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_scoring import Spec, write_config

from harness import store
from harness.errors import UserError
from scoring import aggregate, compare, profile

INF = math.inf


def board(rows: list[tuple[str, str, float, int, str]]) -> pd.DataFrame:
    """Leaderboard rows (submission, workload, median steps, tuning budget, hparams description)."""
    return pd.DataFrame([{"submission": s, "workload": w, "median_steps": t, "median_seconds_to_target": t / 10,
                          "tuning_budget": b, "hparams": h, "config_id": f"{s}-{w}-{b}-{h}"[:10], "rank": i + 1,
                          "global_batch_size": 128}
                         for i, (s, w, t, b, h) in enumerate(rows)])


def test_profile_and_score_by_hand() -> None:
    # w1: a 100, b 200 (r_b = 2), c 500 (r_c = 5 > 4); w2: a 300 (r_a = 1.5), b 200, c miss; w3: nobody
    p = profile.build(board([("a", "w1", 100, 0, "defaults"), ("b", "w1", 200, 0, "defaults"),
                             ("c", "w1", 500, 0, "defaults"), ("a", "w2", 300, 0, "defaults"),
                             ("b", "w2", 200, 0, "defaults"), ("c", "w2", INF, 0, "defaults"),
                             ("a", "w3", INF, 0, "defaults"), ("b", "w3", INF, 0, "defaults"),
                             ("c", "w3", INF, 0, "defaults")]))
    assert p.ratios.loc["a"].tolist() == [1.0, 1.5, INF]
    assert p.ratios.loc["b"].tolist() == [2.0, 1.0, INF]
    assert p.ratios.loc["c"].tolist() == [5.0, INF, INF]
    # B = 1/n sum max(0, 4 - r) / 3: a (3 + 2.5) / 9, b (2 + 3) / 9, c 0
    assert p.scores.to_dict() == pytest.approx({"a": 5.5 / 9, "b": 5 / 9, "c": 0.0})
    rho = p.rho(np.array([1.0, 1.5, 2.0, 4.0]))
    assert rho.loc["a"].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert rho.loc["b"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3])
    # the exact integral agrees with a fine trapezoid of the step function (AlgoPerf's way)
    taus = np.linspace(1, 4, 30001)
    trapz = np.trapezoid(p.rho(taus).to_numpy(), taus, axis=1) / 3
    assert trapz == pytest.approx(p.scores.to_numpy(), abs=1e-3)


def test_ties_one_workload_and_misses_everywhere() -> None:
    tie = profile.build(board([("a", "w", 100, 0, "defaults"), ("b", "w", 100, 0, "defaults")]))
    assert tie.scores.to_dict() == {"a": 1.0, "b": 1.0}  # both the fastest
    none = profile.build(board([("a", "w", INF, 0, "defaults"), ("b", "w", INF, 0, "defaults")]))
    assert none.scores.to_dict() == {"a": 0.0, "b": 0.0} and np.isinf(none.ratios.to_numpy()).all()
    seconds = profile.build(board([("a", "w", 100, 0, "defaults"), ("b", "w", 300, 0, "defaults")]), "seconds")
    assert seconds.ratios.loc["b", "w"] == pytest.approx(3.0) and seconds.times.loc["b", "w"] == 30.0


def test_the_row_that_stands_for_a_submission() -> None:
    rows = board([("a", "w", 300, 0, "lr=1"), ("a", "w", 100, 0, "config=mlperf"), ("a", "w", 50, 0, "lr=2"),
                  ("a", "w", 200, 16, "tuned: 16 feasible"), ("a", "w", 150, 8, "tuned: 8 feasible")])
    p = profile.build(rows)
    assert p.times.loc["a", "w"] == 200 and p.chosen.loc["a", "w"].startswith("tuned study (16 feasible")
    p = profile.build(rows[rows["tuning_budget"] == 0])
    assert p.times.loc["a", "w"] == 100 and p.chosen.loc["a", "w"].startswith("named config=mlperf")
    p = profile.build(rows[(rows["tuning_budget"] == 0) & ~rows["hparams"].str.startswith("config=")])
    assert p.times.loc["a", "w"] == 300 and p.chosen.loc["a", "w"].startswith("best-ranked row")  # rank 1
    # a submission without a row on a workload counts as a miss there
    p = profile.build(board([("a", "w1", 100, 0, "x"), ("b", "w1", 100, 0, "x"), ("a", "w2", 100, 0, "x")]))
    assert p.ratios.loc["b", "w2"] == INF and p.chosen.loc["b", "w2"] == "not run (a miss)"


@pytest.fixture
def paired(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    path = str(tmp_path / "r.db")
    conn = store.connect(path)
    # a reaches on seeds 0-3 at 200-500; b on seeds 0 and 2 later, misses 1 and 3; seed 4 only in a
    write_config(conn, "w", "a", {"lr": 1.0}, "accuracy", "maximize", 0.97,
                 [Spec(0, 200), Spec(1, 300), Spec(2, 400), Spec(3, 500), Spec(4, 100)])
    write_config(conn, "w", "b", {"lr": 2.0}, "accuracy", "maximize", 0.97,
                 [Spec(0, 300), Spec(1, None), Spec(2, 500), Spec(3, None, best_offset=0.02)])
    conn.close()
    with store.ResultsReader(path) as results:
        runs = results.runs()
    return aggregate.leaderboard(runs), runs


def test_compare_pairs_seeds_both_rows_have(paired: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    board_, runs = paired
    c = compare.compare(runs, board_, "w", "a", "b")
    assert c.seeds == [0, 1, 2, 3]
    assert c.a_steps == [200, 300, 400, 500] and c.b_steps == [300, INF, 500, INF]
    assert c.a_faster == (4, 4)
    assert c.steps_sign_p == pytest.approx(2 * 0.5 ** 4)
    assert c.a_better == (4, 4)
    d = c.valid_differences
    assert all(x > 0 for x in d) and d[3] > d[1]  # b's seed 3 plateaued lower than its seed 1
    text = compare.summary(c)
    assert "4 paired seeds" in text and "a faster on 4 of 4" in text and "little power" in text
    assert compare.paired_png(c).startswith(b"\x89PNG")
    # by config id, and the errors
    assert compare.compare(runs, board_, "w", str(board_.iloc[0]["config_id"]), "b").seeds == [0, 1, 2, 3]
    with pytest.raises(UserError, match="names no row of w"):
        compare.compare(runs, board_, "w", "c", "b")
    with pytest.raises(UserError, match="the same row"):
        compare.compare(runs, board_, "w", "a", "a")


def test_each_row_is_compared_with_the_row_above(paired: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    board_, runs = paired
    pairs = compare.with_rows_above(runs, board_)
    (key, c), = pairs.items()
    assert key == compare.row_key(board_[board_["rank"] == 2].iloc[0]) and c.b.startswith("a ")
    from scoring import render

    page = render.html_report(board_, {}, pairs, profile.build(board_))
    assert f'<a href="#cmp-{key}">vs #1</a>' in page and f'id="cmp-{key}"' in page
    assert "Performance profiles across workloads (AlgoPerf benchmark score)" in page
    assert page.count("data:image/png;base64,") == 2  # the paired plot and the profile
