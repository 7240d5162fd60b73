"""The results store: SQLite (stdlib sqlite3) in WAL mode, one transaction per eval.

Writing: `RunRecorder` (a row in `runs` per run, a committed row in `evals` per eval). A killed
process loses at most the eval in flight. Reading: `ResultsReader`, the one place the tables are
queried (scoring, schedule discovery and the benchmark scripts read through it). Imports no JAX.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from harness import process_identity
from harness.errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workload          TEXT NOT NULL,
    submission        TEXT NOT NULL,     -- name (module stem or built-in name)
    submission_path   TEXT NOT NULL,
    submission_hash   TEXT,              -- hash of the submission's code (NULL: recorded before it was)
    hparams           TEXT NOT NULL,     -- canonical JSON (sorted keys) of the full hyperparameters
    knobs             TEXT NOT NULL,     -- canonical JSON of the workload knobs
    hparams_given     TEXT NOT NULL DEFAULT '{}',  -- what the user set; the rest are defaults
    knobs_given       TEXT NOT NULL DEFAULT '{}',
    config_label      TEXT,              -- the named config (--config) and what was set on top; NULL if none
    config_id         TEXT NOT NULL,     -- short hash of (submission, hparams, knobs): the leaderboard row key
    seed              INTEGER NOT NULL,
    status            TEXT NOT NULL,     -- running | completed | diverged | failed | interrupted
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
    finished_at       REAL,
    study_id          INTEGER REFERENCES studies(study_id),  -- NULL: not part of a tuning study
    study_role        TEXT,              -- trial | confirmation (NULL outside studies)
    host              TEXT,              -- the process that runs (or ran) it: host, pid, start time
    pid               INTEGER,           --   (harness/process_identity.py: a gone process's `running`
    process_started   REAL,              --   run is read as interrupted)
    stop_at_target    INTEGER,           -- 1: the run stops at the target (--stop_at_target)
    checkpoint_step   INTEGER,           -- the step of its latest checkpoint (NULL: none)
    resumes           INTEGER DEFAULT 0  -- times it was resumed from a checkpoint after an interruption
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
CREATE TABLE IF NOT EXISTS studies (
    study_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL UNIQUE,
    workload          TEXT NOT NULL,
    submission        TEXT NOT NULL,
    settings          TEXT NOT NULL,     -- canonical JSON of what defines the study (a resume must match)
    search_space      TEXT NOT NULL,     -- canonical JSON (AlgoPerf format)
    search_space_hash TEXT NOT NULL,
    study_seed        INTEGER NOT NULL,
    trials            INTEGER NOT NULL,  -- feasible trials wanted
    max_trials        INTEGER NOT NULL,  -- trials in all, at most
    confirm_seeds     INTEGER NOT NULL,
    select_rule       TEXT NOT NULL,     -- best_valid | steps_to_target
    command           TEXT NOT NULL,
    status            TEXT NOT NULL,     -- tuning | confirming | done | exhausted (max_trials, too few feasible)
    selected_trial    INTEGER,
    compile_seconds   REAL NOT NULL DEFAULT 0,  -- summed over every process that ran the study
    wall_seconds      REAL NOT NULL DEFAULT 0,
    created_at        REAL NOT NULL,
    finished_at       REAL
);
CREATE TABLE IF NOT EXISTS study_trials (
    study_id  INTEGER NOT NULL REFERENCES studies(study_id),
    trial     INTEGER NOT NULL,          -- index of the quasi-random point
    point     TEXT NOT NULL,             -- canonical JSON of the searched hparams
    seed      INTEGER NOT NULL,
    run_id    INTEGER REFERENCES runs(run_id),  -- the attempt that counts
    feasible  INTEGER NOT NULL,          -- 1: trained to the budget, 0: diverged
    PRIMARY KEY (study_id, trial)
);
"""
#: Created after older databases gained SCHEMA's new columns (_add_missing_columns).
INDEXES = """
CREATE INDEX IF NOT EXISTS runs_by_config ON runs(workload, config_id);
CREATE INDEX IF NOT EXISTS runs_by_study ON runs(study_id, study_role, seed);
"""


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: what the store records and what row ids hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


#: PRAGMA application_id of a results database ("LBB1"): what tells it from any other SQLite file.
APPLICATION_ID = 0x4C424231
#: The tables (with a few of their columns) by which a database written before the id was stamped
#: is still recognised as the suite's.
_SUITE_COLUMNS = {"runs": {"run_id", "config_id", "seed", "status", "best_valid"},
                  "evals": {"run_id", "step", "valid_metric"}}
#: Seconds a writer waits for a lock held by another process, after saying so.
LOCK_WAIT_SECONDS = 600.0


def _uri(path: str, mode: str) -> str:
    """A `file:` URI of `path` with every special character escaped (#, ?, %, spaces)."""
    return "file:" + urllib.parse.quote(os.path.abspath(path)) + f"?mode={mode}"


def _read_only(path: str) -> sqlite3.Connection:
    """A connection that never creates or writes the database."""
    return sqlite3.connect(_uri(path, "ro"), uri=True)


def _identify(conn: sqlite3.Connection, path: str) -> str:
    """'suite' (stamped), 'legacy' (the suite's tables, written before the stamp) or 'empty'; a
    UserError naming the fix for a damaged or a foreign database."""
    try:
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        # Never read the file's header with open(): closing any descriptor of the file drops this
        # process's SQLite locks on it (POSIX), and another process's closing reader would then
        # delete the -shm of our open connection. SQLite tells a non-database file itself.
        if "not a database" in str(e):
            raise UserError(f"{path} is not an SQLite database; pass --results=PATH of a database written by "
                            "the harness (it creates a new one)") from None
        raise UserError(f"results database {path} cannot be read ({e}); pass --results=OTHER.db") from None
    if check != "ok":
        raise UserError(f"results database {path} is damaged (quick_check: {check}); restore it from a copy "
                        "or pass --results=OTHER.db") from None
    if app_id == APPLICATION_ID:
        return "suite"
    if app_id != 0:
        raise UserError(f"{path} is an SQLite database of another program (application_id {app_id:#x}); "
                        "pass --results=OTHER.db")
    ours = all(t in tables and cols <= {r[1] for r in conn.execute(f"PRAGMA table_info({t})")}
               for t, cols in _SUITE_COLUMNS.items())
    if ours:
        return "legacy"
    if tables - {"sqlite_sequence"}:
        raise UserError(f"{path} holds another program's tables ({', '.join(sorted(tables))}), not results of "
                        "this suite; pass --results=OTHER.db")
    return "empty"


def check_results(path: str) -> None:
    """Before anything is compiled or written: a results database can be created at `path`, or
    the file there is one (SQLite, not damaged, the suite's or empty). Reads only; one-line
    UserErrors naming the fix."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise UserError(f"results path {path} is a directory; pass a file such as {path}/results.db")
    if not os.path.exists(path):
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            raise UserError(f"cannot create results database {path}: directory {directory} does not exist "
                            "or is not writable; create it or pass --results=OTHER.db")
        return
    if not os.path.isfile(path):
        raise UserError(f"results path {path} is not a regular file; pass --results=FILE.db")
    if not os.access(path, os.W_OK) or not os.access(directory, os.W_OK):
        raise UserError(f"results database {path} is not writable (nor its directory, for SQLite's "
                        "journal); fix the permissions or pass --results=OTHER.db")
    if os.path.getsize(path) == 0:
        return
    conn = _read_only(path)
    try:
        _identify(conn, path)
    finally:
        conn.close()


def connect(path: str) -> sqlite3.Connection:
    """Open (creating if needed) the results database in WAL mode: checked first (check_results),
    stamped with APPLICATION_ID, brought up to SCHEMA. A lock held by another process is waited
    for (LOCK_WAIT_SECONDS), after a line on stderr saying so."""
    check_results(path)
    conn = sqlite3.connect(path, timeout=1.0)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()
    except sqlite3.OperationalError as e:
        if "locked" not in str(e):
            raise
        print(f"waiting for {path}: another process holds its lock (at most {LOCK_WAIT_SECONDS:.0f} s)",
              file=sys.stderr, flush=True)
        conn.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_SECONDS * 1000)}")
    _identify(conn, path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_SECONDS * 1000)}")
    conn.executescript(SCHEMA)
    _add_missing_columns(conn)
    conn.executescript(INDEXES)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
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
    """The results database at `path`, read-only (never created, never written), identified as
    the suite's (an empty one too)."""
    if os.path.isdir(path):
        raise UserError(f"results path {path} is a directory; pass --results=FILE.db")
    if not os.path.exists(path):
        raise UserError(f"results database {path} does not exist; run `python -m harness run ...` "
                        "first or pass --results=PATH")
    conn = _read_only(path)
    conn.row_factory = sqlite3.Row
    try:
        _identify(conn, path)
    except UserError:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def reading_if_any(path: str) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to the results database at `path` while the block runs, or None
    where there are no results yet (no file, or an empty one); checked as check_results does."""
    check_results(path)
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        yield None
        return
    conn = _read_only(path)  # not open_readonly: it would run _identify's quick_check a second time
    conn.row_factory = sqlite3.Row
    try:
        yield None if _identify(conn, path) == "empty" else conn
    finally:
        conn.close()


#: Columns read as floats (NULL as NaN); the others are text.
RUN_NUMERIC = ("seed", "target", "step_budget", "global_batch_size", "steps_done", "steps_to_target",
               "seconds_to_target", "best_valid", "final_valid", "final_test", "final_train",
               "train_seconds", "compile_seconds", "started_at", "finished_at", "pid", "process_started",
               "stop_at_target", "checkpoint_step", "resumes")
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

    def _runs(self, sql: str, params: Sequence[Any]) -> pd.DataFrame:
        """Rows of `runs` with the status as it is now: a `running` run whose process is gone
        (harness/process_identity.py) reads as `interrupted` (column `process_gone` says which)."""
        frame = self._frame(sql, params, RUN_NUMERIC)
        gone = [_process_gone(row) for row in frame.to_dict("records")] if "status" in frame else []
        frame["process_gone"] = pd.Series(gone, index=frame.index, dtype=bool)
        if gone:
            frame.loc[frame["process_gone"], "status"] = "interrupted"
        return frame

    def runs(self) -> pd.DataFrame:
        """Every row of `runs` (numeric columns as float, NULL as NaN), ordered by run_id, with the
        status of a killed run read as interrupted (_runs)."""
        return self._runs("SELECT * FROM runs ORDER BY run_id", ())

    def run(self, run_id: int) -> dict[str, Any]:
        """One run's row; UserError if there is none."""
        frame = self._runs("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if frame.empty:
            raise UserError(f"no run {run_id} in {self.path}; pass --run=ID of a recorded run "
                            "(`python -m scoring leaderboard` lists the rows)")
        return frame.iloc[0].to_dict()

    def evals(self, run_id: int | None = None) -> pd.DataFrame:
        """The `evals` rows of one run (all runs when None), by run and step."""
        where, params = ("WHERE run_id = ? ", (run_id,)) if run_id is not None else ("", ())
        return self._frame(f"SELECT * FROM evals {where}ORDER BY run_id, step", params, EVAL_NUMERIC)

    def _has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 (name,)).fetchone() is not None

    def studies(self) -> pd.DataFrame:
        """Every row of `studies` with the counts of its recorded trials (`trials_run`) and feasible
        ones (`feasible_trials`); empty for a database from before studies; by study_id."""
        if not self._has_table("studies"):
            return pd.DataFrame(columns=["study_id", "name"])
        return self._frame("SELECT s.*, (SELECT COUNT(*) FROM study_trials t WHERE t.study_id = s.study_id) "
                           "AS trials_run, (SELECT COALESCE(SUM(t.feasible), 0) FROM study_trials t WHERE "
                           "t.study_id = s.study_id) AS feasible_trials FROM studies s ORDER BY s.study_id", (),
                           ("study_seed", "trials", "max_trials", "confirm_seeds", "selected_trial",
                            "compile_seconds", "wall_seconds", "created_at", "finished_at", "trials_run",
                            "feasible_trials"))

    def study(self, name: str) -> dict[str, Any]:
        """One study's row by name; UserError naming the studies present otherwise."""
        studies = self.studies()
        match = studies[studies["name"] == name]
        if match.empty:
            names = ", ".join(studies["name"]) or "none"
            raise UserError(f"no study {name!r} in {self.path} (studies: {names}); pass --study=NAME")
        return match.iloc[0].to_dict()

    def study_trials(self, study_id: int) -> pd.DataFrame:
        """The recorded trials of a study with their runs' outcomes, by trial."""
        return self._frame("SELECT t.trial, t.point, t.seed, t.run_id, t.feasible, r.status, r.best_valid, "
                           "r.steps_to_target, r.train_seconds FROM study_trials t JOIN runs r ON "
                           "r.run_id = t.run_id WHERE t.study_id = ? ORDER BY t.trial", (study_id,),
                           ("trial", "seed", "run_id", "feasible", "best_valid", "steps_to_target",
                            "train_seconds"))

    def study_runs(self, study_id: int, role: str) -> pd.DataFrame:
        """The runs of a study in `role` (trial | confirmation), every attempt, by run_id."""
        return self._runs("SELECT * FROM runs WHERE study_id = ? AND study_role = ? ORDER BY run_id",
                          (study_id, role))

    def diagnostics(self, run_id: int, max_step: int | None = None, prefix: str = "") -> pd.DataFrame:
        """(step, name, value) of one run's recorded diagnostics whose name starts with `prefix`,
        at steps <= max_step, by step; empty for a database from before the diagnostics table."""
        if not self._has_table("diagnostics"):
            return pd.DataFrame(columns=["step", "name", "value"])
        return self._frame("SELECT step, name, value FROM diagnostics WHERE run_id = ? AND step <= ? "
                           "AND substr(name, 1, ?) = ? ORDER BY step, name",
                           (run_id, max_step if max_step is not None else 2**62, len(prefix), prefix),
                           ("step", "value"))


def _process_gone(row: Mapping[str, Any]) -> bool:
    """Whether a `running` row's process is known to be gone (never for rows without identity)."""
    if row.get("status") != "running" or not isinstance(row.get("host"), str) or pd.isna(row.get("pid")):
        return False
    identity = process_identity.ProcessIdentity(row["host"], int(row["pid"]), float(row["process_started"]))
    return identity.is_gone() is True


def latest_attempt(conn: sqlite3.Connection, workload: str, config_id: str, seed: int,
                   study_id: int | None = None, study_role: str | None = None) -> dict[str, Any] | None:
    """The latest run (highest run_id) of a row and seed (in a study's role, or outside studies),
    with a gone process's `running` read as `interrupted`; None if there is none."""
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM runs WHERE workload = ? AND config_id = ? AND seed = ? AND study_id IS ? "
                       "AND study_role IS ? ORDER BY run_id DESC LIMIT 1",
                       (workload, config_id, seed, study_id, study_role)).fetchone()
    if row is None:
        return None
    run = dict(row)
    if _process_gone(run):
        run["status"] = "interrupted"
    return run


class RunRecorder:
    """Writes one run: a row in `runs` at start (with the identity of this process), a committed
    row in `evals` per eval, the summary."""

    def __init__(self, conn: sqlite3.Connection, **fields: Any) -> None:
        self.conn = conn
        me = process_identity.current()
        fields = {**fields, "host": me.host, "pid": me.pid, "process_started": me.started}
        cols = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with conn:
            cur = conn.execute(f"INSERT INTO runs ({cols}, status, started_at) VALUES ({marks}, ?, ?)",
                               (*fields.values(), "running", time.time()))
        assert cur.lastrowid is not None  # an INSERT always sets it
        self.run_id = cur.lastrowid

    @classmethod
    def resume(cls, conn: sqlite3.Connection, run_id: int, step: int) -> RunRecorder:
        """Continue run `run_id` from its checkpoint at `step`: `running` again in this process,
        `resumes` counted, its evals and diagnostics after `step` removed (the resumed run records
        them again, the same values: harness/checkpoints.py)."""
        rec = cls.__new__(cls)
        rec.conn, rec.run_id = conn, run_id
        me = process_identity.current()
        with conn:
            conn.execute("DELETE FROM evals WHERE run_id = ? AND step > ?", (run_id, step))
            conn.execute("DELETE FROM diagnostics WHERE run_id = ? AND step > ?", (run_id, step))
            conn.execute("UPDATE runs SET status = 'running', finished_at = NULL, error = NULL, steps_done = ?, "
                         "resumes = COALESCE(resumes, 0) + 1, host = ?, pid = ?, process_started = ? "
                         "WHERE run_id = ?", (step, me.host, me.pid, me.started, run_id))
        return rec

    def record_checkpoint(self, step: int) -> None:
        """The run's latest checkpoint is at `step` (harness/checkpoints.py wrote it)."""
        with self.conn:
            self.conn.execute("UPDATE runs SET checkpoint_step = ? WHERE run_id = ?", (step, self.run_id))

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


def export_run(conn: sqlite3.Connection, run_id: int
               ) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[Any, ...]]]:
    """One run as plain data, (its `runs` row without run_id, its `evals` rows without run_id,
    its (step, name, value) diagnostics): what a Ray worker sends back to the one process that
    writes the results (harness/ray_runner.py)."""
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise KeyError(f"no run {run_id}")
    run = {k: row[k] for k in row.keys() if k != "run_id"}
    evals = [{k: r[k] for k in r.keys() if k != "run_id"}
             for r in conn.execute("SELECT * FROM evals WHERE run_id = ? ORDER BY step", (run_id,))]
    diagnostics = [tuple(r) for r in conn.execute("SELECT step, name, value FROM diagnostics WHERE run_id = ? "
                                                  "ORDER BY step, name", (run_id,))]
    return run, evals, diagnostics


def delete_run(conn: sqlite3.Connection, run_id: int) -> None:
    """Remove a run with its evals and diagnostics (a Ray worker's scratch database, once sent)."""
    with conn:
        conn.execute("DELETE FROM diagnostics WHERE run_id = ?", (run_id,))
        conn.execute("DELETE FROM evals WHERE run_id = ?", (run_id,))
        conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))


def import_run(conn: sqlite3.Connection, run: Mapping[str, Any], evals: Sequence[Mapping[str, Any]],
               diagnostics: Sequence[Sequence[Any]]) -> int:
    """Write a run of export_run as a new run (one transaction: all of it or nothing); its run_id."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    unknown = sorted(set(run) - columns)
    if unknown:  # a worker with another version of the suite
        raise UserError(f"a worker's run has columns this results database lacks ({', '.join(unknown)}); "
                        "run the same version of the suite on every node")
    with conn:
        cur = conn.execute(f"INSERT INTO runs ({', '.join(run)}) VALUES ({', '.join('?' for _ in run)})",
                           tuple(run.values()))
        assert cur.lastrowid is not None
        run_id = cur.lastrowid
        for e in evals:
            conn.execute(f"INSERT INTO evals (run_id, {', '.join(e)}) VALUES (?, {', '.join('?' for _ in e)})",
                         (run_id, *e.values()))
        conn.executemany("INSERT INTO diagnostics (run_id, step, name, value) VALUES (?, ?, ?, ?)",
                         [(run_id, *d) for d in diagnostics])
    return run_id
