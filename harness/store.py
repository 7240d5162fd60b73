"""The results store: SQLite (stdlib sqlite3) in WAL mode, one transaction per eval.

Writing: `RunRecorder` (a row in `runs` per run, a committed row in `evals` per eval). A killed
process loses at most the eval in flight. Reading: `ResultsReader`, the one place the tables are
queried (scoring, schedule discovery and the benchmark scripts read through it). Imports no JAX.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from harness.errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workload          TEXT NOT NULL,
    submission        TEXT NOT NULL,     -- name (module stem or built-in name)
    submission_path   TEXT NOT NULL,
    hparams           TEXT NOT NULL,     -- canonical JSON (sorted keys) of the full hyperparameters
    knobs             TEXT NOT NULL,     -- canonical JSON of the workload knobs
    hparams_given     TEXT NOT NULL DEFAULT '{}',  -- what the user set; the rest are defaults
    knobs_given       TEXT NOT NULL DEFAULT '{}',
    config_label      TEXT,              -- the named config (--config) and what was set on top; NULL if none
    config_id         TEXT NOT NULL,     -- short hash of (submission, hparams, knobs): the leaderboard row key
    seed              INTEGER NOT NULL,
    status            TEXT NOT NULL,     -- running | completed | diverged | failed
    metric            TEXT NOT NULL,     -- e.g. accuracy
    direction         TEXT NOT NULL,     -- maximize | minimize
    target            REAL NOT NULL,
    step_budget       INTEGER NOT NULL,
    global_batch_size INTEGER NOT NULL,
    steps_done        INTEGER NOT NULL DEFAULT 0,
    steps_to_target   INTEGER,           -- NULL if the target was never reached
    seconds_to_target REAL,              -- training seconds at that eval
    best_valid        REAL,
    final_valid       REAL,
    final_test        REAL,
    final_train       REAL,
    train_seconds     REAL,              -- eval, logging and compilation excluded
    compile_seconds   REAL,
    error             TEXT,
    environment       TEXT NOT NULL,     -- JSON: versions, devices, host
    git_revision      TEXT,
    started_at        REAL NOT NULL,     -- unix time
    finished_at       REAL
);
CREATE TABLE IF NOT EXISTS evals (
    run_id        INTEGER NOT NULL REFERENCES runs(run_id),
    step          INTEGER NOT NULL,
    train_seconds REAL NOT NULL,
    train_loss    REAL,   -- mean over the training micro-batches since the previous eval
    train_metric  REAL,
    valid_loss    REAL,
    valid_metric  REAL,
    test_loss     REAL,
    test_metric   REAL,
    wall_time     REAL NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS diagnostics (
    run_id  INTEGER NOT NULL REFERENCES runs(run_id),
    step    INTEGER NOT NULL,   -- the value after this many updates
    name    TEXT NOT NULL,      -- e.g. ratio/Conv_0/kernel (grafting: ||s_M|| / ||s_D|| of a group)
    value   REAL,               -- NULL: undefined (NaN), e.g. a ratio whose D step was zero
    PRIMARY KEY (run_id, step, name)
);
CREATE INDEX IF NOT EXISTS runs_by_config ON runs(workload, config_id);
"""


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: what the store records and what row ids hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def check_writable(path: str) -> None:
    """Raise UserError unless a database can be created or opened for writing at `path`."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UserError(f"results path {path} is a directory; pass a file such as {path}/results.db")
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise UserError(f"results database {path} is not writable; fix its permissions or pass "
                            "--results=OTHER.db")
    elif not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise UserError(f"cannot create results database {path}: directory {directory} does not exist "
                        "or is not writable; create it or pass --results=OTHER.db")


def connect(path: str) -> sqlite3.Connection:
    """Open (creating if needed) the results database in WAL mode."""
    conn = sqlite3.connect(path, timeout=30.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    _add_missing_columns(conn)
    conn.commit()
    return conn


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a database written by an older version up to SCHEMA (columns are only ever added)."""
    reference = sqlite3.connect(":memory:")
    reference.executescript(SCHEMA)
    for table in ("runs", "evals"):
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for _, name, type_, *_ in reference.execute(f"PRAGMA table_info({table})"):
            if name not in have:
                # NULL in the old rows: "unknown", which readers must handle.
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {type_}")
    reference.close()


def open_readonly(path: str) -> sqlite3.Connection:
    if not os.path.exists(path):
        raise UserError(f"results database {path} does not exist; run `python -m harness run ...` "
                        "first or pass --results=PATH")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


#: Columns read as floats (NULL as NaN); the others are text.
RUN_NUMERIC = ("seed", "target", "step_budget", "global_batch_size", "steps_done", "steps_to_target",
               "seconds_to_target", "best_valid", "final_valid", "final_test", "final_train",
               "train_seconds", "compile_seconds", "started_at", "finished_at")
EVAL_NUMERIC = ("step", "train_seconds", "train_loss", "train_metric", "valid_loss", "valid_metric",
                "test_loss", "test_metric", "wall_time")


class ResultsReader:
    """Read-only access to a results database (never writes, never creates it)::

        with ResultsReader(path) as results:
            runs, evals = results.runs(), results.evals()

    A file that is not a results database (or a damaged one) is a UserError naming it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = open_readonly(path)

    def __enter__(self) -> ResultsReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def _frame(self, sql: str, params: Sequence[Any], numeric: Iterable[str]) -> pd.DataFrame:
        try:
            cur = self.conn.execute(sql, params)
            rows = cur.fetchall()
        except sqlite3.DatabaseError as e:
            raise UserError(f"cannot read results database {self.path}: {e}; pass --results=PATH of a "
                            "database written by the harness") from None
        columns = [d[0] for d in cur.description]
        frame = pd.DataFrame.from_records([tuple(row) for row in rows], columns=columns)
        for col in numeric:
            if col in frame.columns:
                frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
        return frame

    def runs(self) -> pd.DataFrame:
        """Every row of `runs` (numeric columns as float, NULL as NaN), ordered by run_id."""
        return self._frame("SELECT * FROM runs ORDER BY run_id", (), RUN_NUMERIC)

    def run(self, run_id: int) -> dict[str, Any]:
        """One run's row; UserError if there is none."""
        frame = self._frame("SELECT * FROM runs WHERE run_id = ?", (run_id,), RUN_NUMERIC)
        if frame.empty:
            raise UserError(f"no run {run_id} in {self.path}; pass --run=ID of a recorded run "
                            "(`python -m scoring leaderboard` lists the rows)")
        return frame.iloc[0].to_dict()

    def evals(self, run_id: int | None = None) -> pd.DataFrame:
        """The `evals` rows of one run (all runs when None), by run and step."""
        where, params = ("WHERE run_id = ? ", (run_id,)) if run_id is not None else ("", ())
        return self._frame(f"SELECT * FROM evals {where}ORDER BY run_id, step", params, EVAL_NUMERIC)

    def diagnostics(self, run_id: int, max_step: int | None = None, prefix: str = "") -> pd.DataFrame:
        """(step, name, value) of one run's recorded diagnostics whose name starts with `prefix`,
        at steps <= max_step, by step; empty for a database from before the diagnostics table."""
        exists = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                   "name = 'diagnostics'").fetchone()
        if exists is None:
            return pd.DataFrame(columns=["step", "name", "value"])
        return self._frame("SELECT step, name, value FROM diagnostics WHERE run_id = ? AND step <= ? "
                           "AND substr(name, 1, ?) = ? ORDER BY step, name",
                           (run_id, max_step if max_step is not None else 2**62, len(prefix), prefix),
                           ("step", "value"))


class RunRecorder:
    """Writes one run: a row in `runs` at start, a committed row in `evals` per eval, the summary."""

    def __init__(self, conn: sqlite3.Connection, **fields: Any) -> None:
        self.conn = conn
        cols = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with conn:
            cur = conn.execute(f"INSERT INTO runs ({cols}, status, started_at) VALUES ({marks}, ?, ?)",
                               (*fields.values(), "running", time.time()))
        assert cur.lastrowid is not None  # an INSERT always sets it
        self.run_id = cur.lastrowid

    def record_eval(self, step: int, train_seconds: float,
                    diagnostics: Sequence[tuple[int, str, float | None]] = (),
                    **metrics: float | None) -> None:
        """One eval row, and the (step, name, value) diagnostics since the last eval, in one
        transaction."""
        cols = ["run_id", "step", "train_seconds", "wall_time", *metrics]
        vals = [self.run_id, step, train_seconds, time.time(), *metrics.values()]
        with self.conn:
            self.conn.execute(f"INSERT OR REPLACE INTO evals ({', '.join(cols)}) VALUES "
                              f"({', '.join('?' for _ in cols)})", vals)
            self.conn.executemany("INSERT OR REPLACE INTO diagnostics (run_id, step, name, value) "
                                  "VALUES (?, ?, ?, ?)", [(self.run_id, *row) for row in diagnostics])
            self.conn.execute("UPDATE runs SET steps_done = ? WHERE run_id = ?", (step, self.run_id))

    def finish(self, status: str, **summary: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in summary)
        with self.conn:
            self.conn.execute(f"UPDATE runs SET status = ?, finished_at = ?{', ' if sets else ''}{sets} "
                              "WHERE run_id = ?", (status, time.time(), *summary.values(), self.run_id))
