"""TensorBoard logs of runs beside the SQLite results, through clu's metric writers (opt-in).

`python -m harness run ... --tensorboard_dir=DIR` writes, for every run,
``DIR/<workload>/<submission>_<config id>/seed<seed>_run<run id>/``: the hyperparameters at the
start, and at every evaluation the scalars ``train/loss``, ``train/<metric>``, ``valid/...``,
``test/...`` and ``train_seconds`` (x axis: the step), plus the submission's recorded diagnostics
(grafting: ``ratio/<group>``). `tensorboard --logdir=DIR` shows them; the results database stays
the record that scoring reads.

Opt-in because clu's TensorBoard writer loads TensorFlow: measured here, importing it took 3.1 s
and 560 MB on top of JAX and Flax in every process, and it needs the `tensorboard` package. Both
come with the project's `tensorboard` extra (`pip install -e '.[tensorboard]'`, which `make
setup` installs).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from harness.errors import UserError

if TYPE_CHECKING:
    from harness.evaluation import EvalResult
    from harness.plan import RunPlan


def check(root: str) -> None:
    """Before a run: UserError naming the fix unless clu's TensorBoard writer can be imported and
    `root` can be created."""
    try:
        from clu import metric_writers  # noqa: F401
    except ImportError as e:
        raise UserError(f"--tensorboard_dir needs clu, tensorboard and tensorflow ({e}); install them "
                        "with `pip install -e '.[tensorboard]'` or drop --tensorboard_dir") from None
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create --tensorboard_dir={root}: {e.strerror or e}; pass a writable "
                        "directory") from None


def run_dir(root: str, plan: RunPlan, seed: int, run_id: int) -> str:
    """Where one run's event files go (names made filesystem-safe: M#D has a '#')."""
    safe = lambda s: re.sub(r"[^A-Za-z0-9_.-]+", "_", s)  # noqa: E731
    return os.path.join(root, safe(plan.workload.name), safe(f"{plan.submission.name}_{plan.config_id}"),
                        f"seed{seed}_run{run_id}")


class RunLog:
    """One run's TensorBoard log (clu MetricWriter, synchronous: a few scalars per evaluation)."""

    def __init__(self, logdir: str, hparams: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        from clu import metric_writers

        self._writer = metric_writers.create_default_writer(logdir, asynchronous=False)
        flat = hparams if isinstance(hparams, Mapping) else {
            f"phase{k + 1}/{name}": v for k, h in enumerate(hparams) for name, v in h.items()}
        self._writer.write_hparams(dict(flat))

    def write_eval(self, result: EvalResult, metric: str,
                   diagnostics: Sequence[tuple[int, str, float | None]]) -> None:
        self._writer.write_scalars(result.step, {
            "train/loss": result.train_loss, f"train/{metric}": result.train_metric,
            "valid/loss": result.valid_loss, f"valid/{metric}": result.valid_metric,
            "test/loss": result.test_loss, f"test/{metric}": result.test_metric,
            "train_seconds": result.train_seconds})
        by_step: dict[int, dict[str, float]] = {}
        for step, name, value in diagnostics:
            if value is not None:
                by_step.setdefault(step, {})[name] = value
        for step, values in sorted(by_step.items()):
            self._writer.write_scalars(step, values)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
