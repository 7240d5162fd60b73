"""harness/snapshot.py: a copy of a results database taken while it is written holds every
committed row (also those still in the WAL), is one self-contained file, and restores to a
database the harness writes on."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from harness import snapshot, store
from harness.spec import UserError
from tests.test_store import FIELDS


def _finished_runs(path: str) -> list[tuple[int, str, float]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT seed, status, best_valid FROM runs ORDER BY seed").fetchall()
    finally:
        conn.close()


def test_copy_while_written_holds_the_rows_in_the_wal(tmp_path: str) -> None:
    db, copy = f"{tmp_path}/studies.db", f"{tmp_path}/published/studies.db"
    writer = store.connect(db)  # stays open: its commits sit in studies.db-wal, not yet in studies.db
    for seed in range(3):
        rec = store.RunRecorder(writer, **{**FIELDS, "seed": seed})
        rec.record_eval(5, 1.5, valid_metric=0.4 + seed / 8)
        rec.finish("completed", best_valid=0.4 + seed / 8)
    running = store.RunRecorder(writer, **{**FIELDS, "seed": 3})
    running.record_eval(5, 1.5, valid_metric=0.1)
    assert os.path.getsize(db + "-wal") > 0
    naive = f"{tmp_path}/naive.db"
    shutil.copyfile(db, naive)  # what cp would give: everything in the WAL is missing, tables too
    naive_conn = sqlite3.connect(naive)
    assert naive_conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    naive_conn.close()

    made = snapshot.snapshot(db, copy)
    assert (made.path, made.runs, made.studies) == (copy, 4, 0)
    assert _finished_runs(copy) == [(0, "completed", 0.4), (1, "completed", 0.525), (2, "completed", 0.65),
                                    (3, "running", None)]
    check = sqlite3.connect(copy)
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert check.execute("PRAGMA application_id").fetchone()[0] == store.APPLICATION_ID
    check.close()
    assert sorted(os.listdir(f"{tmp_path}/published")) == ["studies.db"]  # no -wal, no temporary file
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(copy).st_mode & 0o777 == 0o666 & ~mask  # readable as any new file, not mkstemp's 0600

    # Later commits reach the next copy, which replaces the first.
    running.finish("completed", best_valid=0.9)
    snapshot.snapshot(db, copy)
    assert _finished_runs(copy)[-1] == (3, "completed", 0.9)
    writer.close()


def test_restored_copy_is_a_database_the_harness_writes_on(tmp_path: str) -> None:
    db, copy, restored = f"{tmp_path}/a.db", f"{tmp_path}/copy.db", f"{tmp_path}/restored.db"
    conn = store.connect(db)
    store.RunRecorder(conn, **FIELDS).finish("completed", best_valid=0.5)
    conn.close()
    snapshot.snapshot(db, copy)
    snapshot.snapshot(copy, restored)  # what scripts/studies.sh does when results/ is gone
    again = store.connect(restored)
    assert again.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.RunRecorder(again, **{**FIELDS, "seed": 1}).finish("completed", best_valid=0.6)
    again.close()
    assert _finished_runs(restored) == [(0, "completed", 0.5), (1, "completed", 0.6)]


def test_bad_source_leaves_the_copy_untouched(tmp_path: str) -> None:
    copy = f"{tmp_path}/copy.db"
    with open(copy, "w") as f:
        f.write("the previous copy")
    not_db = f"{tmp_path}/notes.db"
    with open(not_db, "w") as f:
        f.write("not a database at all, just text long enough to be a header" * 10)
    with pytest.raises(UserError, match="is not an SQLite database"):
        snapshot.snapshot(not_db, copy)
    with pytest.raises(UserError, match="does not exist"):
        snapshot.snapshot(f"{tmp_path}/missing.db", copy)
    with open(copy) as f:
        assert f.read() == "the previous copy"
    assert sorted(os.listdir(tmp_path)) == ["copy.db", "notes.db"]


@pytest.mark.cli
def test_command_line(tmp_path: str) -> None:
    db = f"{tmp_path}/a.db"
    conn = store.connect(db)
    store.RunRecorder(conn, **FIELDS).finish("completed", best_valid=0.5)
    conn.close()
    ok = subprocess.run([sys.executable, "-m", "harness.snapshot", f"--results={db}", f"--out={tmp_path}/b.db"],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"snapshot {db} -> {tmp_path}/b.db: 1 runs, 0 studies, ")
    missing = subprocess.run([sys.executable, "-m", "harness.snapshot", f"--results={db}"],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "error: usage: python -m harness.snapshot --results=SOURCE.db --out=COPY.db"]
