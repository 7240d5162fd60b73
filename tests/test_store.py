"""The results store: WAL mode, an eval is durable once recorded, old databases are migrated."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from harness import store
from harness.spec import UserError
from scoring.aggregate import describe_config

FIELDS = dict(workload="w", submission="s", submission_path="s.py", hparams='{"lr":1}', knobs="{}",
              hparams_given='{"lr":1}', knobs_given="{}", config_id="c", seed=0, metric="accuracy",
              direction="maximize", target=0.5, step_budget=10, global_batch_size=8, environment="{}")


def test_each_eval_is_committed_and_visible_to_other_readers(tmp_path: str) -> None:
    db = f"{tmp_path}/r.db"
    conn = store.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rec = store.RunRecorder(conn, **FIELDS)
    rec.record_eval(5, 1.5, valid_metric=0.4)
    reader = sqlite3.connect(db)  # e.g. the leaderboard while the run goes on, or after a kill
    assert reader.execute("SELECT step, valid_metric FROM evals").fetchall() == [(5, 0.4)]
    assert reader.execute("SELECT status, steps_done FROM runs").fetchall() == [("running", 5)]
    rec.finish("completed", best_valid=0.4)
    assert reader.execute("SELECT status, best_valid FROM runs").fetchall() == [("completed", 0.4)]


def test_a_run_exported_from_one_database_is_imported_whole_into_another(tmp_path: str) -> None:
    """What a Ray worker sends back and the driver writes (harness/ray_runner.py)."""
    scratch, results = store.connect(f"{tmp_path}/scratch.db"), store.connect(f"{tmp_path}/results.db")
    store.RunRecorder(results, **FIELDS).finish("completed")  # the results already hold run 1
    rec = store.RunRecorder(scratch, **FIELDS)
    rec.record_eval(5, 1.5, diagnostics=[(5, "ratio/a", 2.0), (5, "ratio/b", None)], valid_metric=0.4)
    rec.record_eval(10, 3.0, valid_metric=0.5, test_metric=0.45)
    rec.finish("completed", best_valid=0.5, steps_done=10, train_seconds=3.0)
    run, evals, diagnostics = store.export_run(scratch, rec.run_id)
    store.delete_run(scratch, rec.run_id)
    assert [scratch.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("runs", "evals", "diagnostics")] \
        == [0, 0, 0]
    run_id = store.import_run(results, run, evals, diagnostics)
    assert run_id == 2
    assert store.export_run(results, run_id) == (run, evals, diagnostics)
    assert run["status"] == "completed" and [e["step"] for e in evals] == [5, 10]
    assert diagnostics == [(5, "ratio/a", 2.0), (5, "ratio/b", None)]
    with pytest.raises(UserError, match="columns this results database lacks"):
        store.import_run(results, {**run, "from_the_future": 1}, [], [])


def test_old_database_gains_new_columns(tmp_path: str) -> None:
    db = f"{tmp_path}/old.db"
    old = sqlite3.connect(db)
    old.executescript(store.SCHEMA.replace("hparams_given     TEXT NOT NULL DEFAULT '{}',", "")
                      .replace("knobs_given       TEXT NOT NULL DEFAULT '{}',", "")
                      .replace("config_label      TEXT,", ""))
    old.close()
    conn = store.connect(db)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    assert {"hparams_given", "knobs_given", "config_label"} <= columns
    store.RunRecorder(conn, **FIELDS)  # new rows can be written


def test_describe_config() -> None:
    row = pd.Series({"hparams": '{"a":1,"b":2.5}', "hparams_given": '{"b":2.5}', "knobs_given": '{"gamma0":0.4}'})
    assert describe_config(row) == "b=2.5 knobs:gamma0=0.4"
    defaults = pd.Series({"hparams": '{"a":1}', "hparams_given": "{}", "knobs_given": "{}"})
    assert describe_config(defaults) == "defaults"
    assert describe_config(pd.Series({"hparams": '{"a":1}', "hparams_given": None})) == "a=1"  # migrated
    named = pd.Series({"hparams": '{"a":1}', "hparams_given": '{"a":1}', "knobs_given": "{}",
                       "config_label": "mlperf a=1"})
    assert describe_config(named) == "config=mlperf a=1"
    assert describe_config(named.drop("config_label")) == "a=1"  # databases before the column


def test_check_results(tmp_path: str) -> None:
    store.check_results(f"{tmp_path}/new.db")
    with pytest.raises(UserError, match="is a directory"):
        store.check_results(str(tmp_path))
    with pytest.raises(UserError, match="does not exist or is not writable"):
        store.check_results(f"{tmp_path}/missing/dir/r.db")
