"""The rows of a tuning study (harness/study.py) in the results store (harness/store.py): its row in
`studies`, a row per finished trial in `study_trials`, and the study's view of its runs (what a
resumed study skips, which code version it ran). Imports no JAX.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from harness.errors import UserError
from harness.store import canonical_json


class StudyRecorder:
    """Writes one tuning study (harness/study.py): its row in `studies`, one row per finished trial
    in `study_trials`; its runs are ordinary runs tagged with the study's id and their role."""

    def __init__(self, conn: sqlite3.Connection, name: str, settings: Mapping[str, Any], **fields: Any) -> None:
        """Create the study `name`, or load it when it exists with the same `settings` (a resumed
        study); UserError naming the differences when the settings differ."""
        self.conn, self.name = conn, name
        row = conn.execute("SELECT study_id, settings FROM studies WHERE name = ?", (name,)).fetchone()
        wanted = canonical_json(settings)
        if row is not None:
            if row[1] != wanted:
                old = json.loads(row[1])
                differ = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
                raise UserError(f"study {name} exists in the results database with other settings "
                                f"({', '.join(differ)}); rerun it with the same command or pass another --study")
            self.study_id = int(row[0])
            return
        with conn:
            cur = conn.execute(f"INSERT INTO studies (name, settings, status, created_at, {', '.join(fields)}) "
                               f"VALUES (?, ?, 'tuning', ?, {', '.join('?' for _ in fields)})",
                               (name, wanted, time.time(), *fields.values()))
        assert cur.lastrowid is not None
        self.study_id = cur.lastrowid

    def check_code(self, source_hash: str) -> None:
        """UserError when this study, not finished, has runs of other submission code than
        `source_hash` (harness/submission_loader.source_hash): a study's trials and seeds are one
        code version, so a study started before an edit is finished with the code it started with.
        A finished study runs nothing more and is not checked (its report can be printed again)."""
        if self.finished():
            return
        row = self.conn.execute("SELECT submission_hash, git_revision FROM runs WHERE study_id = ? AND "
                                "submission_hash != ? ORDER BY run_id LIMIT 1", (self.study_id, source_hash)
                                ).fetchone()
        if row is not None:
            revision = row[1] or "unknown"
            raise UserError(f"study {self.name} ran with submission code {row[0]} (git revision {revision}) but "
                            f"the code loaded now is {source_hash}: finish it with the code it started with "
                            f"(`git worktree add DIR {revision}`, then the same command in DIR) or pass another "
                            "--study")

    def finished(self) -> bool:
        """Whether the study has ended: confirmed (`done`), or no feasible trial to confirm (`exhausted`)."""
        (status,) = self.conn.execute("SELECT status FROM studies WHERE study_id = ?", (self.study_id,)).fetchone()
        return status in ("done", "exhausted")

    def finished_trials(self) -> dict[int, tuple[int, bool]]:
        """trial -> (run_id, feasible) of the trials recorded so far."""
        rows = self.conn.execute("SELECT trial, run_id, feasible FROM study_trials WHERE study_id = ?",
                                 (self.study_id,)).fetchall()
        return {int(t): (int(r), bool(f)) for t, r, f in rows}

    def record_trial(self, trial: int, point: Mapping[str, Any], seed: int, run_id: int, feasible: bool
                     ) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO study_trials (study_id, trial, point, seed, run_id, "
                              "feasible) VALUES (?, ?, ?, ?, ?, ?)",
                              (self.study_id, trial, canonical_json(point), seed, run_id, int(feasible)))

    def finished_runs(self, role: str) -> dict[int, int]:
        """seed -> run_id of the latest finished (completed or diverged) run per seed in `role`
        (trial | confirmation): what a resumed study does not run again."""
        rows = self.conn.execute("SELECT seed, MAX(run_id) FROM runs WHERE study_id = ? AND study_role = ? "
                                 "AND status IN ('completed', 'diverged') GROUP BY seed",
                                 (self.study_id, role)).fetchall()
        return {int(s): int(r) for s, r in rows}

    def interrupt_unfinished_runs(self) -> int:
        """Mark this study's runs still `running` as `interrupted` (call with the study's lock held:
        no other process runs them); returns how many."""
        with self.conn:
            cur = self.conn.execute("UPDATE runs SET status = 'interrupted', finished_at = ? WHERE "
                                    "study_id = ? AND status = 'running'", (time.time(), self.study_id))
        return cur.rowcount

    def update(self, **fields: Any) -> None:
        """Set columns of the study's row (status, selected_trial, finished_at)."""
        with self.conn:
            self.conn.execute(f"UPDATE studies SET {', '.join(f'{k} = ?' for k in fields)} WHERE study_id = ?",
                              (*fields.values(), self.study_id))

    def add_seconds(self, compile_seconds: float, wall_seconds: float) -> None:
        """Add this process's compile and wall time to the study's totals."""
        with self.conn:
            self.conn.execute("UPDATE studies SET compile_seconds = compile_seconds + ?, wall_seconds = "
                              "wall_seconds + ? WHERE study_id = ?",
                              (compile_seconds, wall_seconds, self.study_id))
