"""Tuning studies on Ray: the protocol of harness/study.py, its runs on Ray workers.

The same StudyRunner decides everything (which trials, selection, confirmation, what is recorded
and what a restarted driver runs again); only how its runs are executed differs: on a pool of
workers (harness/ray_runner.py) instead of this process's Sweep. Trials start while the feasible
ones plus those running are fewer than N (StudyRunner._trials), so the study runs the same trials
as without Ray; the confirmation seeds all run at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from harness import ray_cluster
from harness.ray_cluster import RaySettings
from harness.ray_runner import PlanSpec, WorkerPool
from harness.runner import RunOptions, RunSummary, RunTask
from harness.study import StudyOutcome, StudyRunner, StudySpec


class RayStudyRunner(StudyRunner):
    """Runs the studies of one spec with their runs on the Ray cluster of `settings`."""

    def __init__(self, spec: StudySpec, options: RunOptions, command: str, settings: RaySettings) -> None:
        settings.check()
        super().__init__(spec, options, command)
        self.ray = settings
        self.pool: WorkerPool | None = None
        self._stack = contextlib.ExitStack()

    def run(self) -> list[StudyOutcome]:
        with ray_cluster.session(self.ray), self._stack:  # the workers end before the session
            return super().run()

    def _start(self) -> None:
        spec = self.spec
        plan_spec = PlanSpec(spec.workload, spec.submission, spec.config, spec.hparams, spec.knobs, spec.budget,
                             spec.batch_size)
        runs = max(spec.trials, spec.confirm_seeds)
        self.pool = self._stack.enter_context(WorkerPool(plan_spec, self.base, self.options, self.ray, runs))

    def _compile_seconds(self) -> float:
        return self.pool.compile_seconds if self.pool is not None else 0.0

    def _execute(self, conn: Any, next_task: Callable[[], RunTask | None],
                 done: Callable[[RunTask, RunSummary], None], queued: Callable[[], int]) -> None:
        assert self.pool is not None
        self.pool.map_runs(conn, next_task, done, queued)
