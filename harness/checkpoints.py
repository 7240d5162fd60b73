"""Checkpoints of a run, so that an interrupted run resumes where it was instead of at step 1.

A checkpoint is taken at an evaluation (harness/runner.py): there the metrics since the last
evaluation have been read and recorded and no step is in flight, so the whole run is the train state
plus a few numbers: the step, the outcome so far (best validation, time to target), the training and
evaluation seconds. The rng needs nothing: each step's key is a function of (seed, step). The data
order needs nothing either: `Workload.train_batches(..., start=)` yields the batches from any step
(harness/spec.py). A resumed run therefore computes the same steps on the same batches and records the
same evaluations, bit for bit (tests/test_resume.py kills a run with SIGKILL to show it).

orbax-checkpoint writes each checkpoint to a temporary directory renamed when complete (a kill while
saving leaves the previous one intact) and keeps only the latest. Saving is synchronous: the train
state is donated to the next step, so it must be on disk (or on the host) before training goes on,
and a checkpoint every few evaluations is cheap next to them. Multi-host: every process calls
save/restore (orbax coordinates them), and each process holds its shards.

Layout: <checkpoint_dir>/run_<run_id>/<step>/{state,progress}; a run's directory is removed when the
run ends (completed, diverged or failed): only interrupted runs keep checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Any

import orbax.checkpoint as ocp

from harness.errors import UserError


def default_dir(results: str) -> str:
    """Checkpoints next to the results database: results/results.db -> results/results.checkpoints."""
    return os.path.splitext(os.path.abspath(results))[0] + ".checkpoints"


def check_dir(path: str) -> None:
    """A checkpoint directory can be created (or written) at `path`; one-line UserError otherwise."""
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe) or "."
    if not os.path.isdir(probe) or not os.access(probe, os.W_OK):
        raise UserError(f"cannot write checkpoints under {path} ({probe} is not a writable directory); "
                        "pass --checkpoint_dir=DIR")


@dataclasses.dataclass(frozen=True)
class Progress:
    """What a checkpoint holds besides the train state (stored as JSON)."""

    step: int
    outcome: dict[str, Any]  # recording.Outcome's fields (but direction and target)
    train_seconds: float
    eval_seconds: float
    config_id: str
    seed: int


class RunCheckpoints:
    """The checkpoints of one run (run_id) under `root`."""

    def __init__(self, root: str, run_id: int) -> None:
        self.path = os.path.join(os.path.abspath(root), f"run_{run_id}")
        self._manager: ocp.CheckpointManager | None = None

    def _open(self) -> ocp.CheckpointManager:
        if self._manager is None:
            options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True, enable_async_checkpointing=False)
            self._manager = ocp.CheckpointManager(self.path, options=options)
        return self._manager

    def latest_step(self) -> int | None:
        """The step of the latest complete checkpoint, or None."""
        if not os.path.isdir(self.path):
            return None
        step = self._open().latest_step()
        return None if step is None else int(step)

    def save(self, state: Any, progress: Progress) -> None:
        """Write the checkpoint at progress.step (the previous one is removed once it is complete)."""
        self._open().save(progress.step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), progress=ocp.args.JsonSave(dataclasses.asdict(progress))))

    def restore(self, like: Any) -> tuple[Any, Progress]:
        """(train state, progress) of the latest checkpoint; `like` is a train state of the same
        structure, shapes and shardings (the run's initial state)."""
        step = self.latest_step()
        if step is None:
            raise FileNotFoundError(f"no checkpoint under {self.path}")
        restored = self._open().restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(like), progress=ocp.args.JsonRestore()))
        return restored["state"], Progress(**restored["progress"])

    def remove(self) -> None:
        """Delete the run's checkpoints (the run ended; nothing will resume it)."""
        if self._manager is not None:
            self._manager.close()
            self._manager = None
        shutil.rmtree(self.path, ignore_errors=True)

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None
