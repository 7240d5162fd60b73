"""The training step and the run loop on real data: accumulation, ghost BN, divergence, records."""

from __future__ import annotations

import json
import sqlite3

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import BAD_SUBMISSIONS

from harness import plan
from harness.runner import RunOptions, Sweep, run_sweep
from harness.training import accumulate_gradients
from workloads import get_workload


def random_batch(n: int, seed: int = 0) -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    return {"x": jnp.asarray(rng.normal(size=(n, 28, 28, 1)), jnp.float32),
            "y": jnp.asarray(rng.integers(0, 10, n), jnp.int32)}


@pytest.mark.slow
def test_accumulated_gradient_equals_full_batch_gradient_without_bn() -> None:
    w = get_workload("fashion_mnist_lenet")
    params, state, _ = w.init(jax.random.PRNGKey(0))
    batch = random_batch(w.phases[0].global_batch_size)
    micro, _, sums = accumulate_gradients(w, params, state, batch, jax.random.PRNGKey(1),
                                         w.phases[0].micro_batch_size)
    (_, (_, full_sums)), full = jax.value_and_grad(w.train_loss, has_aux=True)(
        params, state, batch, jax.random.PRNGKey(1))
    for a, b in zip(jax.tree.leaves(micro), jax.tree.leaves(full)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-7)
    assert float(sums["count"]) == w.phases[0].global_batch_size
    np.testing.assert_allclose(sums["loss"], full_sums["loss"], rtol=1e-5)


@pytest.mark.slow
def test_ghost_batch_norm_is_per_micro_batch() -> None:
    """With BN, the step's gradient is the mean of per-micro-batch gradients (statistics over 64),
    not the gradient over the whole batch; running stats are the mean of the per-micro updates."""
    w = get_workload("fashion_mnist_resnet")
    params, state, _ = w.init(jax.random.PRNGKey(0))
    batch = random_batch(4 * w.micro_batch_size)
    grads, new_state, _ = accumulate_gradients(w, params, state, batch, jax.random.PRNGKey(0), w.micro_batch_size)
    per_micro = []
    for i in range(4):
        mb = jax.tree.map(lambda x, i=i: x[i * 64:(i + 1) * 64], batch)
        per_micro.append(jax.grad(w.train_loss, has_aux=True)(params, state, mb, None))
    mean_grads = jax.tree.map(lambda *g: sum(g) / 4, *(g for g, _ in per_micro))
    mean_state = jax.tree.map(lambda *s: sum(s) / 4, *(s for _, (s, _) in per_micro))
    for a, b in zip(jax.tree.leaves((grads, new_state)), jax.tree.leaves((mean_grads, mean_state))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    whole = jax.grad(w.train_loss, has_aux=True)(params, state, batch, None)[0]
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(whole)))
    assert diff > 1e-4  # BN over 256 examples is a different objective


@pytest.fixture
def easy_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """A target every run reaches at its first eval, to exercise time-to-target recording."""
    import workloads.fashion_mnist as fm
    monkeypatch.setattr(fm, "target_for", lambda name: (0.05, 1440))


def rows(db: str, sql: str) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_run_records_runs_and_evals(tmp_path: str, easy_target: None) -> None:
    db = f"{tmp_path}/r.db"
    summaries = run_sweep(plan.build("fashion_mnist_lenet", "nesterov", budget=6,
                                     hparams={"learning_rate": 0.05}),
                          RunOptions(seeds=(3, 4), results=db, progress=False,
                                     tensorboard_dir=f"{tmp_path}/tb"))
    assert [s.status for s in summaries] == ["completed", "completed"]
    runs = rows(db, "SELECT * FROM runs ORDER BY run_id")
    assert [r["seed"] for r in runs] == [3, 4] and {r["status"] for r in runs} == {"completed"}
    r = runs[0]
    assert r["steps_done"] == 6 and r["step_budget"] == 6 and r["global_batch_size"] == 1024
    assert r["steps_to_target"] == 6 and r["seconds_to_target"] == pytest.approx(r["train_seconds"])
    assert r["train_seconds"] > 0 and r["compile_seconds"] > 0 and r["finished_at"] >= r["started_at"]
    assert json.loads(r["hparams"])["learning_rate"] == 0.05
    assert json.loads(r["environment"])["jax"] == jax.__version__
    assert runs[0]["config_id"] == runs[1]["config_id"]
    evals = rows(db, f"SELECT * FROM evals WHERE run_id = {r['run_id']}")
    assert [e["step"] for e in evals] == [6]  # eval cadence 48 > budget: only the final eval
    e = evals[0]
    assert 0 < e["valid_metric"] <= 1 and 0 < e["test_metric"] <= 1 and e["train_loss"] > 0
    assert e["valid_metric"] == r["best_valid"] == r["final_valid"] and e["test_metric"] == r["final_test"]
    # the same evaluation in the run's TensorBoard log (harness/tensorboard.py)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = f"{tmp_path}/tb/fashion_mnist_lenet/nesterov_{r['config_id']}/seed3_run{r['run_id']}"
    events = EventAccumulator(logdir, size_guidance={"tensors": 0})
    events.Reload()
    scalars = {tag: [(ev.step, float(np.asarray(tf_array(ev)))) for ev in events.Tensors(tag)]
               for tag in events.Tags()["tensors"] if not tag.startswith("_hparams_")}
    assert scalars["valid/accuracy"] == [(6, pytest.approx(e["valid_metric"], rel=1e-6))]
    assert scalars["train/loss"] == [(6, pytest.approx(e["train_loss"], rel=1e-6))]
    assert set(scalars) == {f"{split}/{m}" for split in ("train", "valid", "test")
                            for m in ("loss", "accuracy")} | {"train_seconds"}


def tf_array(event: object) -> np.ndarray:
    from tensorboard.util import tensor_util

    return tensor_util.make_ndarray(event.tensor_proto)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_runs_are_deterministic_per_seed(tmp_path: str) -> None:
    db = f"{tmp_path}/r.db"
    sweep = Sweep(plan.build("fashion_mnist_lenet", "adamw", budget=4),
                  RunOptions(results=db, progress=False))
    from harness import store
    conn = store.connect(db)
    a, b, c = (sweep.run_seed(conn, s) for s in (0, 0, 1))
    conn.close()
    evals = {r["run_id"]: (r["valid_loss"], r["train_loss"]) for r in rows(db, "SELECT * FROM evals")}
    assert evals[a.run_id] == evals[b.run_id]
    assert evals[a.run_id] != evals[c.run_id]


@pytest.mark.slow
def test_divergence_is_recorded_and_the_sweep_goes_on(tmp_path: str) -> None:
    db = f"{tmp_path}/r.db"
    summaries = run_sweep(plan.build("fashion_mnist_lenet", f"{BAD_SUBMISSIONS}/diverges.py", budget=50),
                          RunOptions(seeds=(0, 1), results=db, progress=False))
    assert [s.status for s in summaries] == ["diverged", "diverged"]
    assert all(s.steps_done == 1 for s in summaries)  # the first update is already non-finite
    assert [r["status"] for r in rows(db, "SELECT status FROM runs")] == ["diverged", "diverged"]


@pytest.mark.slow
def test_stop_at_target(tmp_path: str, easy_target: None) -> None:
    db = f"{tmp_path}/r.db"
    (s,) = run_sweep(plan.build("fashion_mnist_resnet", "nesterov", budget=39),
                     RunOptions(results=db, progress=False, stop_at_target=True))
    assert s.status == "completed" and s.steps_to_target == 13 and s.steps_done == 13


@pytest.mark.slow
def test_traced_and_constant_hparams_give_the_same_losses() -> None:
    """The compiled step as every run uses it (numeric hparams as arguments) against the same step
    with every hparam a constant of the program: the same losses to rtol 1e-5 over a few steps."""
    from harness import parallel
    from harness.training import TrainState, make_train_step

    p = plan.build("fashion_mnist_resnet", "nesterov", budget=4, hparams={"learning_rate": 0.5})
    wl, first = p.workload, p.phases[0]
    assert {"learning_rate", "momentum", "warmup_fraction"} <= set(first.traced)
    data = wl.load_data(None)
    traced_step = p.jit_train_step(0)
    constant_step = jax.jit(make_train_step(wl, p.submission.update, first.hparams, first.ctx, p.mesh))
    losses = {}
    for name, step, args in (("traced", traced_step, p.traced_arguments(0)), ("constant", constant_step, {})):
        params, model_state, _ = wl.init(jax.random.PRNGKey(0))
        state = parallel.put_replicated(TrainState(params, model_state, p.submission.init(
            params, first.hparams, first.ctx)), p.mesh)
        batches = wl.train_batches(data, 0)
        losses[name] = []
        for i in range(4):
            state, metrics = step(state, parallel.put_batch(next(batches), p.mesh), jax.random.PRNGKey(1),
                                  np.int32(i), args)
            losses[name].append(float(metrics["loss"]) / float(metrics["count"]))
    np.testing.assert_allclose(losses["traced"], losses["constant"], rtol=1e-5)
    assert losses["traced"][0] != losses["traced"][3]  # it trained
