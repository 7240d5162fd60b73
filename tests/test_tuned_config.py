"""`python -m scoring tuned-config`: a study's selected point as a named config that trains the
confirmed row itself."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
from conftest import Result
from test_bad_input import assert_one_line_error
from test_study import rows


@pytest.mark.slow
def test_tuned_config_reproduces_the_confirmed_row(tmp_path: str, main_in_process: Callable[..., Result]) -> None:
    space, db = os.path.join(tmp_path, "space.json"), os.path.join(tmp_path, "r.db")
    out = os.path.join(tmp_path, "tuned.json")
    with open(space, "w") as f:
        json.dump({"learning_rate": {"min": 0.01, "max": 0.1, "scaling": "log"}}, f)
    common = ["--workload=fashion_mnist_lenet", "--submission=nesterov", "--budget=2", f"--results={db}",
              "--progress=false"]
    result = main_in_process("harness", "tune", *common, "--trials=2", "--confirm_seeds=1",
                             f"--search_space={space}", "--study=s", '--hparams={"momentum": 0.8}')
    assert result.returncode == 0, result.stderr[-2000:]
    result = main_in_process("scoring", "tuned-config", f"--results={db}", "--study=s", f"--out={out}")
    assert result.returncode == 0 and result.stdout == f"wrote {out}\n", result.stderr
    with open(out) as f:
        config = json.load(f)
    (selected,) = rows(db, "SELECT selected_trial FROM studies")[0]
    (point,) = rows(db, f"SELECT point FROM study_trials WHERE trial = {selected}")[0]
    assert config["hparams"] == {"momentum": 0.8, **json.loads(point)}
    assert config["workload"] == "fashion_mnist_lenet" and config["knobs"] == {}
    assert config["source"].startswith("tuning study s (python -m harness tune; search space ")
    assert f"Selected trial {selected + 1} of 2" in config["notes"]
    assert "Confirmation on 1 of 1 seeds" in config["notes"]
    # The config names the confirmed row: a run of it lands in that row (the same config id).
    confirmed = rows(db, "SELECT DISTINCT config_id FROM runs WHERE study_role = 'confirmation'")
    result = main_in_process("harness", "run", *common, f"--config={out}", "--seeds=0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert rows(db, "SELECT DISTINCT config_id FROM runs WHERE study_role IS NULL") == confirmed
    assert rows(db, "SELECT DISTINCT best_valid FROM runs WHERE seed = 0 AND study_role IS NOT 'trial'"
                 ) == rows(db, "SELECT best_valid FROM runs WHERE study_role = 'confirmation'")


@pytest.mark.parametrize("args, message", [
    (["--study=s"], "tuned-config needs --study=NAME and --out=JSON"),
    (["--study=s", "--out=x.txt"], "--out=x.txt: a named config is a .json file"),
    (["--study=s", "--out=/no/such/dir/x.json"], "--out=/no/such/dir/x.json: directory /no/such/dir does not "
                                                  "exist"),
    (["--study=nope", "--out=x.json"], "no study 'nope' in"),
])
def test_bad_tuned_config_input(args: list[str], message: str, results_db: str,
                                main_in_process: Callable[..., Result]) -> None:
    result = main_in_process("scoring", "tuned-config", f"--results={results_db}", *args)
    assert_one_line_error(result, message)
