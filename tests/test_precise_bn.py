"""Precise batch-norm statistics for evaluation (knob `precise_bn_batches` of fashion_mnist_resnet,
workloads/image_classification.py; the evaluator's eval_model_state hook, harness/evaluation.py).

The statistics are checked against numpy by hand (a tiny two-BN network, and the stem layer of the
real workload on batches drawn by hand from the documented stream), the evaluation against itself
run twice (deterministic), the default against the training state (nothing changes), and a run with
the knob against one without (the run's training data and training are untouched).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import Result
from test_bad_input import assert_one_line_error, harness_run

from harness import parallel, plan, store
from harness.errors import UserError
from harness.evaluation import Evaluator
from harness.runner import RunOptions, run_sweep
from harness.training import TrainState
from workloads import get_workload
from workloads.image_classification import PRECISE_BN_SEED, precise_bn_statistics

EPS = 1e-5


class TwoBN(nn.Module):
    """dense -> BN -> relu -> dense -> BN: the second layer's statistics depend on the first's
    normalisation with the micro-batch's own statistics."""

    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        bn = lambda: nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,  # noqa: E731
                                  epsilon=EPS)
        x = nn.relu(bn()(nn.Dense(4)(x)))
        return bn()(nn.Dense(3)(x))


def by_hand(params: Any, xs: np.ndarray, micro: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(mean, var) of BN_0, of BN_1]: the mean over every micro-batch of its statistics (float64)."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    sums = [[0.0, 0.0], [0.0, 0.0]]
    micro_batches = xs.reshape(-1, micro, xs.shape[-1]).astype(np.float64)
    for mb in micro_batches:
        h = mb @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
        m0, v0 = h.mean(0), h.var(0)
        h = (h - m0) / np.sqrt(v0 + EPS) * p["BatchNorm_0"]["scale"] + p["BatchNorm_0"]["bias"]
        h = np.maximum(h, 0) @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
        m1, v1 = h.mean(0), h.var(0)
        for layer, (m, v) in enumerate([(m0, v0), (m1, v1)]):
            sums[layer][0] = sums[layer][0] + m / len(micro_batches)
            sums[layer][1] = sums[layer][1] + v / len(micro_batches)
    return [(s[0], s[1]) for s in sums]


def test_precise_bn_statistics_equal_numpy_by_hand() -> None:
    model = TwoBN()
    xs = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (3, 8, 5)) * 2 + 1, np.float32)  # K=3, G=8
    variables = model.init(jax.random.PRNGKey(0), xs[0], train=False)
    # Scales and shifts away from (1, 0), so that the second layer sees them.
    params = jax.tree.map(lambda a: a + 0.3 * jax.random.normal(jax.random.PRNGKey(2), a.shape),
                          variables["params"])
    stale = jax.tree.map(lambda a: a + 7.0, {"batch_stats": variables["batch_stats"]})  # must not matter
    got = precise_bn_statistics(model.clone(bn_momentum=0.0), params, stale, jnp.asarray(xs), 4)
    for layer, (mean, var) in enumerate(by_hand(params, xs, 4)):
        stats = got["batch_stats"][f"BatchNorm_{layer}"]
        np.testing.assert_allclose(stats["mean"], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(stats["var"], var, rtol=1e-4, atol=1e-6)
    # Micro-batches of 8 (one per batch) give other statistics: the span is the micro-batch.
    other = precise_bn_statistics(model.clone(bn_momentum=0.0), params, stale, jnp.asarray(xs), 8)
    assert not np.allclose(other["batch_stats"]["BatchNorm_1"]["var"], got["batch_stats"]["BatchNorm_1"]["var"])


@pytest.fixture(scope="module")
def workload_and_data() -> tuple[Any, Any]:
    wl = get_workload("fashion_mnist_resnet", {"precise_bn_batches": 2})
    return wl, wl.load_data(None)


@pytest.mark.slow
def test_stem_statistics_on_the_documented_batches(workload_and_data: tuple[Any, Any]) -> None:
    """The stem BN's statistics are numpy's over the micro-batches of 64 of the first 2 x 1,280
    examples of the permutation default_rng([2^31, 0]) of the training split (the stream of seed
    PRECISE_BN_SEED), its input the stem convolution computed here with lax."""
    wl, data = workload_and_data
    params, model_state, _ = wl.init(jax.random.PRNGKey(0))
    got = wl.eval_model_state(params, model_state, data)["batch_stats"]["BatchNorm_0"]
    train_x = np.asarray(data.train_x)
    idx = np.random.default_rng([PRECISE_BN_SEED, 0]).permutation(train_x.shape[0])[:2 * 1280]
    y = np.asarray(jax.lax.conv_general_dilated(
        jnp.asarray(train_x[idx]), params["Conv_0"]["kernel"], (wl.stem_stride,) * 2, "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC")), np.float64)
    micro = y.reshape(-1, 64 * y.shape[1] * y.shape[2], y.shape[3])  # (40 micro-batches, values, C)
    np.testing.assert_allclose(got["mean"], micro.mean(1).mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got["var"], micro.var(1).mean(0), rtol=1e-4, atol=1e-6)


def _evaluator(knobs: dict[str, float], data: Any) -> tuple[Evaluator, TrainState]:
    p = plan.build("fashion_mnist_resnet", "nesterov", knobs=knobs, budget=1)
    params, model_state, _ = p.workload.init(jax.random.PRNGKey(0))
    opt_state = p.submission.init(params, p.phases[0].hparams, p.phases[0].ctx)
    state = parallel.put_replicated(TrainState(params, model_state, opt_state), p.mesh)
    evaluator = Evaluator(p, data)
    evaluator.warm_up(state)
    return evaluator, state


@pytest.mark.slow
def test_evaluation_with_precise_bn_is_deterministic_and_uses_it(workload_and_data: tuple[Any, Any]) -> None:
    _, data = workload_and_data
    evaluator, state = _evaluator({"precise_bn_batches": 2}, data)
    first, second = evaluator.evaluate(state), evaluator.evaluate(state)
    assert first == second
    stats = [evaluator.model_state(state) for _ in range(2)]
    for a, b in zip(jax.tree.leaves(stats[0]), jax.tree.leaves(stats[1])):
        np.testing.assert_array_equal(a, b)
    # At initialisation the running averages are (0, 1): precise BN evaluates another model.
    running, _ = _evaluator({"precise_bn_batches": 0}, data)
    assert running.evaluate(state) != first
    assert evaluator.split(state.params, state.model_state, "validation") == running.evaluate(state)["validation"]


def test_knob_zero_evaluates_the_training_state(workload_and_data: tuple[Any, Any]) -> None:
    """Knob 0: the evaluation's model state is the training state itself (the running averages),
    so the evaluations are those of the code before the knob existed. The default is 1."""
    _, data = workload_and_data
    assert get_workload("fashion_mnist_resnet").knobs["precise_bn_batches"] == 1
    wl = get_workload("fashion_mnist_resnet", {"precise_bn_batches": 0})
    params, model_state, _ = wl.init(jax.random.PRNGKey(0))
    assert wl.eval_model_state(params, model_state, data) is model_state
    evaluator, state = _evaluator({"precise_bn_batches": 0}, data)
    assert evaluator.model_state(state) is state.model_state


def test_precise_bn_refuses_several_processes(workload_and_data: tuple[Any, Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    wl, data = workload_and_data
    params, model_state, _ = wl.init(jax.random.PRNGKey(0))
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    with pytest.raises(UserError, match="needs a single process"):
        wl.eval_model_state(params, model_state, data)


@pytest.mark.parametrize("value, expected", [
    (2.5, "knob 'precise_bn_batches' counts training batches: give a whole number, got 2.5"),
    (40, "knob 'precise_bn_batches'=40 is outside its allowed range [0, 39]"),
])
def test_bad_precise_bn_batches_is_one_line(value: float, expected: str, results_db: str,
                                            main_in_process: Callable[..., Result]) -> None:
    result = main_in_process("harness", *harness_run(results_db, [f'--knobs={{"precise_bn_batches": {value}}}']))
    assert_one_line_error(result, expected)


@pytest.mark.slow
def test_precise_bn_leaves_training_untouched(tmp_path: Any) -> None:
    """26 steps (2 evaluations) with precise BN and without: the same training (data order, losses,
    training accuracy: its statistics come from a stream of their own), other validation values."""
    results = str(tmp_path / "results.db")
    for knobs in ({"precise_bn_batches": 0}, {"precise_bn_batches": 3}):
        p = plan.build("fashion_mnist_resnet", "nesterov", knobs=knobs, budget=26)
        run_sweep(p, RunOptions(seeds=(0,), results=results, progress=False))
    with store.ResultsReader(results) as reader:
        runs = reader.runs().sort_values("run_id")
        plain, precise = (reader.evals(int(r)).sort_values("step") for r in runs["run_id"])
    assert list(plain["step"]) == list(precise["step"]) == [13, 26]
    for column in ("train_loss", "train_metric"):
        assert list(plain[column]) == list(precise[column])
    assert list(plain["valid_metric"]) != list(precise["valid_metric"])
