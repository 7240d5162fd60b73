"""Evaluation of a run: the compiled evaluation step over the workload's splits (with the model
state of the workload's optional eval_model_state hook, harness/spec.py), and the metric sums of the
training steps since the last evaluation, both summed on the host."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import jax

from harness import parallel
from harness.spec import ModelState, Params, eval_model_state_hook
from harness.training import DIAGNOSTICS, TrainState, make_eval_step

if TYPE_CHECKING:
    from harness.plan import RunPlan

SPLITS = ("validation", "test")


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """One evaluation: the columns of the `evals` table (harness/store.py)."""

    step: int
    train_seconds: float
    train_loss: float  # mean over the training micro-batches since the previous evaluation
    train_metric: float
    valid_loss: float
    valid_metric: float
    test_loss: float
    test_metric: float

    def metrics(self) -> dict[str, float]:
        """The loss and metric columns (everything but the step and the seconds)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("step", "train_seconds")}


def host_sums(trees: list[dict[str, Any]]) -> dict[str, float]:
    """Sum dicts of device scalars on the host (one transfer, no per-length XLA compilation).

    The "diagnostics" entry of a step's metrics (values, not sums) is left out.
    """
    values = jax.device_get(trees)
    return {key: float(sum(v[key] for v in values)) for key in values[0] if key != DIAGNOSTICS}


def mean_loss_and_metric(sums: dict[str, float], metric: str) -> tuple[float, float]:
    """(sum of losses / count, sum of the metric / count)."""
    return sums["loss"] / sums["count"], sums[metric] / sums["count"]


class Evaluator:
    """The evaluation step, compiled once for the shape of the first validation batch (every eval
    batch of a workload has one shape: harness/spec.py), run over whole splits.

    One evaluation uses one model state for every split: the workload's eval_model_state hook's
    when it defines one (e.g. precise batch-norm statistics), else the training state's.
    """

    def __init__(self, plan: RunPlan, data: Any) -> None:
        self.workload, self.data, self.mesh = plan.workload, data, plan.mesh
        self._hook = eval_model_state_hook(self.workload)
        self._first: Any = parallel.put_batch(next(self.workload.eval_batches(data, SPLITS[0])),
                                              self.mesh)
        state = plan.abstract_state()
        self._step = jax.jit(make_eval_step(self.workload),
                             out_shardings=parallel.replicated(self.mesh)).lower(
            state.params, state.model_state, self._first).compile()

    def warm_up(self, state: TrainState) -> None:
        """One execution on the first batch (with the hook's model state: its computations compile
        here too), then the batch is released (the runtime's first-call cost is compile time,
        harness/runner.py)."""
        if self._first is not None:
            jax.block_until_ready(self._step(state.params, self.model_state(state), self._first))
            self._first = None

    def model_state(self, state: TrainState) -> ModelState:
        """The model state an evaluation of `state` uses: the hook's, placed as the compiled step
        takes it (replicated), else the training state's own."""
        if self._hook is None:
            return state.model_state
        model_state = self._hook(state.params, state.model_state, self.data)
        if model_state is state.model_state:  # e.g. precise BN off: nothing to place
            return model_state
        return parallel.put_replicated(model_state, self.mesh)

    def evaluate(self, state: TrainState) -> dict[str, tuple[float, float]]:
        """split -> (mean loss, metric) of `state` for every split of SPLITS, one model state."""
        model_state = self.model_state(state)
        return {name: self.split(state.params, model_state, name) for name in SPLITS}

    def split(self, params: Params, model_state: ModelState, split: str) -> tuple[float, float]:
        """(mean loss, metric) of (params, model_state) over one split."""
        sums = [self._step(params, model_state, parallel.put_batch(b, self.mesh))
                for b in self.workload.eval_batches(self.data, split)]
        return mean_loss_and_metric(host_sums(sums), self.workload.metric)
