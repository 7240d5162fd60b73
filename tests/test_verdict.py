"""scoring/verdict.py: the studies' confirmations beside the published numbers, paired by seed, and
the sentence when a target cannot separate the optimizers. The studies are written through the
store (as harness/study.py writes them); the expected numbers are worked out by hand below."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Sequence

import pytest
from conftest import Result

from harness import store, study_store
from harness.spec import UserError
from scoring import published, verdict

TARGET = 0.85


def _study(conn: sqlite3.Connection, name: str, submission: str, confirmation: Sequence[tuple[float, int | None]],
           trials: Sequence[bool] = (True, True), wall_seconds: float = 5400.0, status: str = "done") -> None:
    """A finished study: trials (feasible or not), then confirmation seeds 0.. with (best valid,
    steps to target or None for a miss); status "exhausted": no trial selected."""
    fields = dict(workload="fashion_mnist_resnet", submission=submission, submission_path="s.py", hparams="{}",
                  knobs="{}", config_id=f"{submission}-cfg", metric="accuracy", direction="maximize",
                  target=TARGET, step_budget=117, global_batch_size=1280, environment="{}")
    rec = study_store.StudyRecorder(conn, name, {"n": name}, workload="fashion_mnist_resnet",
                                    submission=submission, search_space="{}", search_space_hash="h", study_seed=0,
                                    trials=2, max_trials=6, confirm_seeds=len(confirmation),
                                    select_rule="best_valid", command="tune")
    for trial, feasible in enumerate(trials):
        run = store.RunRecorder(conn, **fields, seed=2**30 + trial, study_id=rec.study_id, study_role="trial")
        run.finish("completed" if feasible else "diverged", best_valid=0.8)
        rec.record_trial(trial, {"learning_rate": 0.1 * (trial + 1)}, 2**30 + trial, run.run_id, feasible)
    for seed, (best, steps) in enumerate(confirmation):
        run = store.RunRecorder(conn, **fields, seed=seed, study_id=rec.study_id, study_role="confirmation")
        run.finish("completed", best_valid=best, steps_to_target=steps)
    rec.update(status=status, selected_trial=0 if status == "done" else None)
    rec.add_seconds(300.0, wall_seconds)


SPEC = {"title": "Test verdict", "questions": [{
    "question": "Does Nesterov match LARS?", "workload": "fashion_mnist_resnet",
    "rows": [{"label": "Nesterov", "study": "t/nesterov",
              "published": [{"paper": "nado2021", "table": "Section 2.1", "row": "Configuration A"}]},
             {"label": "LARS", "study": "t/lars",
              "published": [{"paper": "nado2021", "table": "Section 2", "row": "LARS (published pipeline)"}]},
             {"label": "LAMB", "study": "t/lamb", "published": []}],
    "pairs": [["Nesterov", "LARS"]]}]}


@pytest.fixture
def studies(tmp_path: str) -> tuple[str, str]:
    db, spec = os.path.join(tmp_path, "s.db"), os.path.join(tmp_path, "verdict.json")
    conn = store.connect(db)
    _study(conn, "t/nesterov", "nesterov", [(0.85, 50), (0.86, 40), (0.84, None), (0.87, 30)],
           trials=(True, False, True))
    _study(conn, "t/lars", "lars", [(0.80, None), (0.86, 60), (0.83, None), (0.82, None)], wall_seconds=3600.0)
    conn.close()
    with open(spec, "w") as f:
        json.dump(SPEC, f)
    return db, spec


def test_page_beside_the_published_numbers(studies: tuple[str, str]) -> None:
    db, spec_path = studies
    spec = verdict.load_spec(spec_path)
    reports = verdict.load_reports(db, spec)
    assert sorted(reports) == ["t/lars", "t/nesterov"]  # t/lamb is not in the database
    page = verdict.markdown(spec, reports, published.load())
    lines = page.splitlines()
    assert lines[0] == "# Test verdict"
    assert "`fashion_mnist_resnet`, target 85.00% accuracy." in lines
    nesterov = next(line for line in lines if line.startswith("| Nesterov"))
    cells = [c.strip() for c in nesterov.strip("|").split("|")]
    # 2 of 3 trials feasible; 4 seeds; median of 84, 85, 86, 87 is 85.5 (exact interval of 4 values:
    # [min, max] at 1 - 2 / 16 = 87.5%, marked *); 3 of 4 reached: Wilson 95% [30%, 95%]; steps
    # 30, 40, 50, inf: median 45; 1.5 h of machine time.
    assert cells[1:7] == ["2/2 (+1 diverged)", "4/4", "85.50% [84.00%, 87.00%]*", "3/4 [30%, 95%]", "45", "1.5 h"]
    assert cells[7] == ("Nado et al. 2021 Section 2.1, Configuration A: median validation accuracy 75.97%; "
                        "runs reaching target 34 trials; runs 50 trials")
    lars = next(line for line in lines if line.startswith("| LARS"))
    assert [c.strip() for c in lars.strip("|").split("|")][3:7] == ["82.50% [80.00%, 86.00%]*", "1/4 [5%, 70%]",
                                                                     "inf", "1.0 h"]
    lamb = next(line for line in lines if line.startswith("| LAMB"))
    assert "| not run yet | - |" in lamb
    # Seed by seed: Nesterov better on seeds 0, 2, 3 (seed 1 ties): 3 of 3, sign test p = 2 * 0.5^3;
    # first to the target on seeds 0, 1, 3 (seed 2: both missed).
    paired = next(line for line in lines if line.startswith("- Nesterov vs LARS"))
    assert paired.startswith("- Nesterov vs LARS on 4 paired seeds: Nesterov has the better best valid on 3 of 3 "
                             "(sign test p = 0.25, Wilcoxon p = ")
    assert paired.endswith("reaches the target first on 3 of 3 (sign test p = 0.25).")
    assert "does not separate" not in page


def test_a_target_every_seed_reaches_is_said(tmp_path: str) -> None:
    db = os.path.join(tmp_path, "s.db")
    conn = store.connect(db)
    _study(conn, "t/nesterov", "nesterov", [(0.90, 50), (0.91, 40)])
    _study(conn, "t/lars", "lars", [(0.88, 70), (0.86, 90)])
    conn.close()
    spec = verdict.Spec("T", (verdict.Question("q", "fashion_mnist_resnet", (
        verdict.Row("Nesterov", "t/nesterov", ()), verdict.Row("LARS", "t/lars", ())), (("Nesterov", "LARS"),)),))
    page = verdict.markdown(spec, verdict.load_reports(db, spec), published.load())
    assert ("- **The target (85.00%) does not separate these optimizers: every seed of every study reached it "
            "(2/2, 2/2); compare the medians and the steps to target.**") in page.splitlines()


def test_no_seed_reaching_the_target_is_said_without_a_p_value(tmp_path: str) -> None:
    """No seed of either study reaches the target: no sign test over zero seeds (it would print nan)."""
    db = os.path.join(tmp_path, "s.db")
    conn = store.connect(db)
    _study(conn, "t/nesterov", "nesterov", [(0.80, None), (0.81, None)])
    _study(conn, "t/lars", "lars", [(0.78, None), (0.82, None)])
    conn.close()
    spec = verdict.Spec("T", (verdict.Question("q", "fashion_mnist_resnet", (
        verdict.Row("Nesterov", "t/nesterov", ()), verdict.Row("LARS", "t/lars", ())), (("Nesterov", "LARS"),)),))
    page = verdict.markdown(spec, verdict.load_reports(db, spec), published.load())
    paired = next(line for line in page.splitlines() if line.startswith("- Nesterov vs LARS"))
    assert paired.startswith("- Nesterov vs LARS on 2 paired seeds: Nesterov has the better best valid on 1 of 2 ")
    assert paired.endswith("neither reaches the target before the other on any seed."), paired


@pytest.mark.parametrize("change, message", [
    (lambda s: s["questions"][0]["rows"][0]["published"][0].update(row="Configuration Z"),
     "no published number matches"),
    (lambda s: s["questions"][0].update(pairs=[["Nesterov", "Adam"]]), "a pair is two of the row labels"),
    (lambda s: s["questions"][0]["rows"][1].pop("study"), "question 1 row 2: needs 'study' (str)"),
    (lambda s: s["questions"][0]["rows"][0]["published"][0].update(page=3), "a published entry has keys"),
])
def test_bad_spec(tmp_path: str, change: Callable[[dict], None], message: str) -> None:
    spec = json.loads(json.dumps(SPEC))
    change(spec)
    path = os.path.join(tmp_path, "v.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    with pytest.raises(UserError, match=re.escape(message)):
        parsed = verdict.load_spec(path)
        verdict.markdown(parsed, {}, published.load())


def test_command_line(studies: tuple[str, str], tmp_path: str, main_in_process: Callable[..., Result]) -> None:
    db, spec = studies
    out = os.path.join(tmp_path, "page")
    result = main_in_process("scoring", "verdict", f"--spec={spec}", f"--results={db}", f"--out={out}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Test verdict\n")
    with open(out + ".md") as f:
        assert f.read() in result.stdout
    with open(out + ".png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    missing = main_in_process("scoring", "verdict", f"--results={db}")
    assert missing.returncode == 2 and "verdict needs --spec=FILE.json" in missing.stderr


def test_an_exhausted_study_says_every_trial_diverged(tmp_path: str) -> None:
    """A study whose every trial diverged selects nothing: its row says so instead of '0/K' seeds (which
    reads as 'not run yet'), and a pair with it has no paired line."""
    db = os.path.join(tmp_path, "s.db")
    conn = store.connect(db)
    _study(conn, "t/nesterov", "nesterov", [(0.90, 50), (0.91, 40)])
    _study(conn, "t/sgd", "sgd", [], trials=(False, False, False), wall_seconds=720.0, status="exhausted")
    conn.close()
    spec = verdict.Spec("T", (verdict.Question("q", "fashion_mnist_resnet", (
        verdict.Row("Nesterov", "t/nesterov", ()), verdict.Row("SGD", "t/sgd", ())), (("Nesterov", "SGD"),)),))
    lines = verdict.markdown(spec, verdict.load_reports(db, spec), published.load()).splitlines()
    sgd = next(line for line in lines if line.startswith("| SGD"))
    assert [c.strip() for c in sgd.strip("|").split("|")][1:7] == [
        "0/2 (+3 diverged)", "none: every trial diverged", "-", "-", "-", "0.2 h"]
    assert not any(line.startswith("- Nesterov vs SGD") for line in lines)
