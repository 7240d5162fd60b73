"""The committed tuned configs (submissions/<s>/configs/<workload>_tuned.json) against the studies
they came from, as recorded in the published database docs/studies/studies.db (issue 15): the
config's hparams are the selected trial's point over the study's fixed hparams and starting config,
and the numbers in its notes are the ones the database holds. Read here with plain SQL, not with
scoring.tuned_config (the code that wrote the files), so an edited config or a snapshot that lost
rows fails."""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
from pathlib import Path

import pytest
from _submission_helpers import REPO

DATABASE = REPO / "docs" / "studies" / "studies.db"
TUNED = sorted(REPO.glob("submissions/*/configs/*_tuned.json"))


def _connect() -> sqlite3.Connection:
    return sqlite3.connect(f"file:{DATABASE}?mode=ro&immutable=1", uri=True)


def _study_name(config: dict) -> str:
    match = re.match(r"tuning study (\S+) \(", config["source"])
    assert match, f"source does not name its study: {config['source'][:80]}"
    return match.group(1)


def test_there_are_tuned_configs() -> None:
    assert len(TUNED) >= 2  # nesterov on fashion_mnist_resnet, adamw on pydocs_bert at least


@pytest.mark.parametrize("path", TUNED, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_tuned_config_is_the_recorded_selection(path: Path) -> None:
    config = json.loads(path.read_text())
    name = _study_name(config)
    conn = _connect()
    try:
        row = conn.execute("SELECT study_id, workload, submission, settings, status, selected_trial, trials "
                           "FROM studies WHERE name = ?", (name,)).fetchone()
        assert row is not None, f"study {name} is not in {DATABASE.name}: commit the snapshot"
        study_id, workload, submission, settings, status, selected, trials = row
        assert (status, workload, submission) == ("done", config["workload"], path.parent.parent.name)
        assert path.stem == f"{workload}_tuned"
        (point,) = conn.execute("SELECT point FROM study_trials WHERE study_id = ? AND trial = ?",
                                (study_id, selected)).fetchone()
        settings = json.loads(settings)
        base = {}  # the named config the study started from (--config), under its fixed hparams
        if settings["config"]:
            base_file = path.parent / f"{settings['config']}.json"
            base = json.loads(base_file.read_text())["hparams"]
        assert config["hparams"] == {**base, **settings["hparams"], **json.loads(point)}
        # The latest finished attempt per confirmation seed (a re-run seed counts once).
        values = [v for (v,) in conn.execute(
            "SELECT best_valid FROM runs r WHERE study_id = ? AND study_role = 'confirmation' AND run_id = "
            "(SELECT MAX(run_id) FROM runs q WHERE q.study_id = r.study_id AND q.study_role = 'confirmation' "
            "AND q.seed = r.seed AND q.status IN ('completed', 'diverged'))", (study_id,))]
        reached = conn.execute(
            "SELECT COUNT(DISTINCT seed) FROM runs WHERE study_id = ? AND study_role = 'confirmation' "
            "AND steps_to_target IS NOT NULL AND status IN ('completed', 'diverged')", (study_id,)).fetchone()[0]
    finally:
        conn.close()
    notes = config["notes"]
    assert f"Selected trial {selected + 1} of " in notes
    assert f"({trials} feasible" in notes
    k = len(values)
    assert f"Confirmation on {k} of {k} seeds" in notes
    assert f"median best valid {100 * statistics.median(values):.2f}%" in notes
    assert f"reached by {reached}/{k}" in notes
