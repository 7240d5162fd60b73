"""What a run records: its row in the results store (harness/store.py) opened from the plan, each
evaluation with the diagnostics since the last one, and the outcome it finishes with.

Time-to-target: the step (and training seconds) of the first evaluation whose validation metric
reached the workload's target in its direction (scoring/aggregate.py states the same semantics).
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import store
from harness.direction import Direction
from harness.evaluation import EvalResult
from harness.tensorboard import RunLog, run_dir

if TYPE_CHECKING:
    from harness.plan import RunPlan


@dataclasses.dataclass
class Outcome:
    """A run's outcome so far: steps done, best validation metric, when the target was reached,
    the latest values. Updated at every evaluation; what `RunRecorder.finish` writes."""

    direction: Direction
    target: float
    steps_done: int = 0
    best_valid: float | None = None
    steps_to_target: int | None = None
    seconds_to_target: float | None = None
    final_train: float | None = None
    final_valid: float | None = None
    final_test: float | None = None
    first_train_loss: float | None = None  # the mean training loss at the first evaluation
    last_train_loss: float | None = None

    @property
    def reached(self) -> bool:
        return self.steps_to_target is not None

    def loss_diverged(self, factor: float) -> bool:
        """Whether the latest mean training loss exceeds `factor` times the first (0: never): a
        divergence that stays finite (SGD on pydocs_bert reached losses of 4e7)."""
        first, last = self.first_train_loss, self.last_train_loss
        return bool(factor) and first is not None and last is not None and last > factor * abs(first)

    def progress(self) -> dict[str, Any]:
        """The fields a checkpoint keeps (harness/checkpoints.py): all but direction and target."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("direction", "target")}

    def restore(self, progress: Mapping[str, Any]) -> None:
        """Take the fields of `progress()` back (a resumed run)."""
        for name, value in progress.items():
            setattr(self, name, value)

    def observe(self, result: EvalResult) -> None:
        self.final_train, self.final_valid, self.final_test = (result.train_metric, result.valid_metric,
                                                               result.test_metric)
        if result.train_loss is not None and math.isfinite(result.train_loss):
            self.last_train_loss = result.train_loss
            if self.first_train_loss is None:
                self.first_train_loss = result.train_loss
        if self.best_valid is None or self.direction.better(result.valid_metric, self.best_valid):
            self.best_valid = result.valid_metric
        if not self.reached and self.direction.reached(result.valid_metric, self.target):
            self.steps_to_target, self.seconds_to_target = result.step, result.train_seconds

    def summary(self) -> dict[str, Any]:
        """The runs-table columns of the outcome."""
        return {"steps_done": self.steps_done, "steps_to_target": self.steps_to_target,
                "seconds_to_target": self.seconds_to_target, "best_valid": self.best_valid,
                "final_valid": self.final_valid, "final_test": self.final_test,
                "final_train": self.final_train}


def diagnostic_rows(steps_and_values: Sequence[tuple[int, Mapping[str, Any]]]
                    ) -> list[tuple[int, str, float | None]]:
    """(step, name, value) rows of host diagnostics; an array of n > 1 values gives name/0..n-1.
    NaN (undefined, e.g. a grafting ratio whose D step was zero) is stored as NULL."""
    rows: list[tuple[int, str, float | None]] = []
    for step, values in steps_and_values:
        for name, value in values.items():
            flat = np.asarray(value, dtype=np.float64).ravel()
            names = [name] if flat.size == 1 else [f"{name}/{i}" for i in range(flat.size)]
            rows.extend((step, n, float(v) if np.isfinite(v) else None) for n, v in zip(names, flat))
    return rows


class Recorder:
    """One run's writes: its row in the store and, if asked for, its TensorBoard log; nothing on
    processes other than 0 (one process writes the results)."""

    def __init__(self, writer: store.RunRecorder | None, metric: str = "", log: RunLog | None = None
                 ) -> None:
        self._writer, self._metric, self._log = writer, metric, log

    @property
    def run_id(self) -> int:
        return self._writer.run_id if self._writer is not None else -1

    def record_eval(self, result: EvalResult, diagnostics: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        if self._writer is None:
            return
        rows = diagnostic_rows(diagnostics)
        self._writer.record_eval(result.step, result.train_seconds, diagnostics=rows, **result.metrics())
        if self._log is not None:
            self._log.write_eval(result, self._metric, rows)

    def record_checkpoint(self, step: int) -> None:
        if self._writer is not None:
            self._writer.record_checkpoint(step)

    def finish(self, status: str, outcome: Outcome, train_seconds: float, error: str | None = None
               ) -> None:
        if self._writer is None:
            return
        if self._log is not None:
            self._log.close()
        if error is not None:  # a failure records how far it got and why, not a partial outcome
            self._writer.finish(status, error=error, steps_done=outcome.steps_done)
        else:
            self._writer.finish(status, train_seconds=train_seconds, **outcome.summary())


@dataclasses.dataclass(frozen=True)
class StudyLink:
    """Which tuning study a run belongs to, and as what (harness/study.py)."""

    study_id: int
    role: str  # "trial" | "confirmation"


def start(conn: sqlite3.Connection | None, plan: RunPlan, seed: int, compile_seconds: float,
          environment: str, git_revision: str | None, tensorboard_dir: str | None = None,
          study: StudyLink | None = None, stop_at_target: bool = False) -> Recorder:
    """A `running` row for `seed` of `plan` (None: a process that does not write), tagged with its
    study if any, and its TensorBoard log under `tensorboard_dir` if given (harness/tensorboard.py)."""
    if conn is None:
        return Recorder(None)
    wl = plan.workload
    writer = store.RunRecorder(
        conn, workload=wl.name, submission=plan.submission.name,
        submission_path=plan.submission.path, submission_hash=plan.source_hash,
        hparams=store.canonical_json(plan.hparams),
        knobs=store.canonical_json(wl.knobs), hparams_given=store.canonical_json(plan.hparams_given),
        knobs_given=store.canonical_json(plan.knobs_given), config_label=plan.config_label,
        config_id=plan.config_id, seed=seed, metric=wl.metric, direction=wl.direction.value,
        target=wl.target, step_budget=plan.budget,
        global_batch_size=plan.phases[0].phase.global_batch_size, compile_seconds=compile_seconds,
        environment=environment, git_revision=git_revision,
        study_id=study.study_id if study else None, study_role=study.role if study else None,
        stop_at_target=int(stop_at_target))
    log = (RunLog(run_dir(tensorboard_dir, plan, seed, writer.run_id), plan.hparams)
           if tensorboard_dir is not None else None)
    return Recorder(writer, wl.metric, log)


def resume(conn: sqlite3.Connection | None, plan: RunPlan, run_id: int, seed: int, step: int,
           tensorboard_dir: str | None = None) -> Recorder:
    """Run `run_id` continued from its checkpoint at `step` (store.RunRecorder.resume); its
    TensorBoard log, if asked for, is continued in a new file of the run's directory."""
    if conn is None:
        return Recorder(None)
    writer = store.RunRecorder.resume(conn, run_id, step)
    log = (RunLog(run_dir(tensorboard_dir, plan, seed, run_id), plan.hparams)
           if tensorboard_dir is not None else None)
    return Recorder(writer, plan.workload.metric, log)
