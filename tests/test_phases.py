"""Multi-phase runs through the harness on a tiny two-phase workload: one compiled step per phase
(different batch and sequence shapes), per-phase hyperparameters, the next_phase hook, an eval at
each phase end, and --budget scaling the phases."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import BAD_SUBMISSIONS

from harness import plan, store
from harness.plan import scaled_phases
from harness.runner import RunOptions, Sweep
from harness.spec import Batch, Direction, Knob, ParamType, Phase, UserError


class TwoPhaseToy:
    """Least squares on a length-3 weight: phase 1 sees the first 2 inputs, phase 2 all 3."""

    name = "toy_two_phase"
    metric = "accuracy"
    direction = Direction.MAXIMIZE
    target = 2.0  # never reached
    eval_every_steps = 100  # only the phase ends evaluate
    checkpoint_every = 0
    KNOBS: tuple[Knob, ...] = ()
    knobs: dict[str, float] = {}
    phases = (Phase(name="short", steps=3, global_batch_size=4, micro_batch_size=2, seq_len=2),
              Phase(name="long", steps=2, global_batch_size=2, micro_batch_size=1, seq_len=3))

    def load_data(self, data_dir: str | None) -> None:
        return None

    def init(self, rng: jax.Array) -> tuple[Any, Any, Any]:
        return {"w": jnp.ones(3)}, {}, {"w": ParamType.WEIGHT}

    def abstract_batch(self, batch_size: int, phase: int = 0) -> Batch:
        return {"x": jax.ShapeDtypeStruct((batch_size, self.phases[phase].seq_len), jnp.float32)}

    def train_batches(self, data: None, seed: int, phase: int = 0, start: int = 0
                      ) -> Iterator[dict[str, np.ndarray]]:
        p = self.phases[phase]
        while True:
            yield {"x": np.ones((p.global_batch_size, p.seq_len), np.float32)}

    def _losses(self, params: Any, x: jax.Array) -> jax.Array:
        return (x @ params["w"][:x.shape[1]] - 0.5) ** 2

    def train_loss(self, params: Any, model_state: Any, batch: Any, rng: jax.Array) -> Any:
        losses = self._losses(params, batch["x"])
        sums = {"loss": losses.sum(), "accuracy": jnp.zeros(()), "count": jnp.float32(losses.shape[0])}
        return losses.mean(), (model_state, sums)

    def eval_batches(self, data: None, split: str) -> Iterator[dict[str, np.ndarray]]:
        yield {"x": np.ones((2, 3), np.float32), "mask": np.ones(2, np.float32)}

    def eval_sums(self, params: Any, model_state: Any, batch: Any) -> dict[str, jax.Array]:
        losses = self._losses(params, batch["x"]) * batch["mask"]
        return {"loss": losses.sum(), "accuracy": jnp.zeros(()), "count": batch["mask"].sum()}


def run(tmp_path: str, hparams: Any, budget: int | None = None) -> tuple[Sweep, list[tuple[int, float]]]:
    db = f"{tmp_path}/r.db"
    sweep = Sweep(plan.build(TwoPhaseToy(), f"{BAD_SUBMISSIONS}/phase_probe.py", hparams=hparams,
                             budget=budget), RunOptions(results=db, progress=False))
    sweep.plan.submission.next_phase.__globals__["CALLS"].clear()
    conn = store.connect(db)
    summary = sweep.run_seed(conn, 0)
    conn.close()
    assert summary.status == "completed" and summary.steps_done == sweep.plan.budget
    with sqlite3.connect(db) as c:
        evals = c.execute("SELECT step, valid_loss FROM evals ORDER BY step").fetchall()
    return sweep, evals


def test_each_phase_has_its_step_hparams_and_hook(tmp_path: str) -> None:
    sweep, evals = run(tmp_path, [{"learning_rate": 0.01}, {"learning_rate": 0.0}])
    assert len(sweep.compiled(sweep.plan).steps) == 2  # one compiled step per phase (batch 4 x 2, then 2 x 3)
    assert [step for step, _ in evals] == [3, 5]  # an eval at the end of each phase
    assert evals[1][1] == evals[0][1]  # phase 2 trained with learning rate 0: nothing moved
    calls = sweep.plan.submission.next_phase.__globals__["CALLS"]
    assert calls == [(1, {"learning_rate": 0.0})]  # called once, at phase 2, with phase 2's hparams


def test_one_mapping_applies_to_every_phase(tmp_path: str) -> None:
    sweep, evals = run(tmp_path, {"learning_rate": 0.01})
    assert [p.hparams for p in sweep.plan.phases] == [{"learning_rate": 0.01}] * 2
    assert evals[1][1] < evals[0][1]  # phase 2 kept training


def test_budget_scales_phases_and_keeps_one_step_each(tmp_path: str) -> None:
    sweep, evals = run(tmp_path, {}, budget=2)
    assert [p.phase.steps for p in sweep.plan.phases] == [1, 1]
    assert [step for step, _ in evals] == [1, 2]
    long = (Phase(name="a", steps=14063, global_batch_size=8, micro_batch_size=8),
            Phase(name="b", steps=1562, global_batch_size=8, micro_batch_size=8))
    assert [p.steps for p in scaled_phases(long, 2)] == [1, 1]
    assert [p.steps for p in scaled_phases(long, 100)] == [90, 10]
    with pytest.raises(UserError, match="smaller than the number of phases"):
        scaled_phases(long, 1)


def test_hparams_list_must_match_the_phases(tmp_path: str) -> None:
    with pytest.raises(UserError, match="has 3 mapping"):
        run(tmp_path, [{}, {}, {}])
