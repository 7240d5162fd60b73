"""The jitted training step: micro-batch gradient accumulation in an unrolled lax.scan on every
device (data parallel, harness/parallel.py), a mean over devices, then the submission's update.
Pure functions; the loop around them lives in harness/runner.py, their factory in harness/plan.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, PartitionSpec

from harness.parallel import DATA_AXIS
from harness.spec import Batch, Hparams, SubmissionContext, Workload

#: Upper bound on lax.scan's unroll factor on CPU. Any loop left in the scan is slow there: measured
#: side by side (`python -m harness.bench_unroll`, fashion_mnist_resnet, micro-batches of 64;
#: docs/performance.md), full unrolling ran 4.8x (interquartile 4.0-5.3) faster per step than unroll
#: 32 at 40 micro-batches and compiled in 25 s instead of 52 s; 2.4x at 80 (compile 74 s vs 71 s). At
#: 160 it is 2.5x faster per step but compiles in 202 s instead of 73 s, about what the 15 steps of a
#: fixed-epochs run at that batch save: the bound stops there.
MAX_UNROLL = 128


def default_unroll(n_micro: int) -> int:
    """Unroll the micro-batch scan on CPU only: there it is 5-20x faster; GPU/TPU run a rolled
    while loop well, and unrolling would only multiply compile time and live activations."""
    return min(n_micro, MAX_UNROLL) if jax.default_backend() == "cpu" else 1


def donate_state() -> bool:
    """Whether the train step donates its input state (updates it in place).

    On GPU/TPU donation halves the memory of params and optimizer state. On CPU it cost speed:
    measured here (fashion_mnist_resnet, 30 alternating rounds of 13 steps), the donating step ran
    at 0.958x the speed of the same step without (likely cause, not verified: the runtime waits
    for the previous step to release the donated buffers before it runs the next, so the host
    cannot run ahead); and CPU memory is not what limits these workloads.
    """
    return jax.default_backend() != "cpu"


@dataclasses.dataclass
class TrainState:
    params: Any
    model_state: Any
    opt_state: Any


jax.tree_util.register_dataclass(TrainState, data_fields=["params", "model_state", "opt_state"],
                                 meta_fields=[])


def split_micro_batches(batch: Batch, micro_batch_size: int) -> Batch:
    """(G, ...) -> (G // micro, micro, ...) for every array of the batch."""

    def split(x: jax.Array) -> jax.Array:
        if x.shape[0] % micro_batch_size:
            raise ValueError(f"global batch {x.shape[0]} is not a multiple of micro-batch {micro_batch_size}")
        return x.reshape(x.shape[0] // micro_batch_size, micro_batch_size, *x.shape[1:])

    return jax.tree.map(split, batch)


def accumulate_gradients(workload: Workload, params: Any, model_state: Any, batch: Batch,
                         rng: jax.Array, micro_batch_size: int, first_micro_index: jax.Array | int = 0,
                         unroll: int | None = None) -> tuple[Any, Any, dict[str, jax.Array]]:
    """Mean gradient over the micro-batches of `batch`, the new model state and the metric sums.

    Each micro-batch is one batch-norm batch (ghost BN). The running statistics of the step are the
    mean of the per-micro-batch updates (what a cross-replica mean gives in data parallel training).
    Micro-batch i draws its randomness from fold_in(rng, first_micro_index + i): the same stream
    whatever the number of devices the global batch is spread over.
    """
    grad_fn = jax.value_and_grad(workload.train_loss, has_aux=True)
    n_micro = batch_size(batch) // micro_batch_size
    if n_micro <= 1:
        (_, (new_state, sums)), grads = grad_fn(params, model_state, batch,
                                                jax.random.fold_in(rng, first_micro_index))
        return grads, new_state, sums

    micro = split_micro_batches(batch, micro_batch_size)

    def body(carry: Any, xs: tuple[Batch, jax.Array]) -> tuple[Any, None]:
        grad_sum, state_sum, sums_acc = carry
        mb, i = xs
        (_, (new_state, sums)), grads = grad_fn(params, model_state, mb,
                                                jax.random.fold_in(rng, first_micro_index + i))
        add = lambda a, b: jax.tree.map(jnp.add, a, b)  # noqa: E731
        return (add(grad_sum, grads), add(state_sum, new_state), add(sums_acc, sums)), None

    zeros = lambda t: jax.tree.map(jnp.zeros_like, t)  # noqa: E731
    _, (_, zero_sums) = jax.eval_shape(workload.train_loss, params, model_state,
                                       jax.tree.map(lambda x: x[0], micro), rng)
    init = (zeros(params), zeros(model_state), jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), zero_sums))
    (grad_sum, state_sum, sums), _ = jax.lax.scan(body, init, (micro, jnp.arange(n_micro)),
                                                  unroll=unroll or default_unroll(n_micro))
    mean = lambda t: jax.tree.map(lambda x: x / n_micro, t)  # noqa: E731
    return mean(grad_sum), mean(state_sum), sums


def abstract_init(workload: Workload) -> tuple[Any, Any, Any]:
    """(params, model_state) as shapes, and the param types (static Python values captured while
    init is traced): nothing is computed or allocated, even for BERT-Large."""
    captured = {}

    def f() -> tuple[Any, Any]:
        params, state, types = workload.init(jax.random.PRNGKey(0))
        captured["types"] = types
        return params, state

    params, state = jax.eval_shape(f)
    return params, state, captured["types"]


def batch_size(batch: Batch) -> int:
    return int(jax.tree.leaves(batch)[0].shape[0])


def all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def data_parallel_gradients(workload: Workload, mesh: Mesh, micro_batch_size: int,
                            unroll: int | None = None
                            ) -> Callable[..., tuple[Any, Any, dict[str, jax.Array]]]:
    """(params, model_state, global batch, rng) -> (mean grads, mean model state, summed metrics).

    shard_map runs accumulate_gradients on each device's slice of the batch (params replicated);
    gradients and model state are averaged over devices (every device has the same number of
    micro-batches, so this is the mean over all micro-batches), metric sums are summed.
    """

    def per_device(params: Any, model_state: Any, batch: Batch, rng: jax.Array) -> Any:
        n_local = batch_size(batch) // micro_batch_size
        first = jax.lax.axis_index(DATA_AXIS) * max(n_local, 1)
        grads, new_state, sums = accumulate_gradients(workload, params, model_state, batch, rng,
                                                      micro_batch_size, first, unroll)
        return (jax.lax.pmean(grads, DATA_AXIS), jax.lax.pmean(new_state, DATA_AXIS),
                jax.lax.psum(sums, DATA_AXIS))

    replicated, sharded = PartitionSpec(), PartitionSpec(DATA_AXIS)
    # check_vma=False: the scan's zero-initialised carry is device-invariant while the per-device
    # gradients vary; the explicit pmean/psum above make every output replicated.
    return jax.shard_map(per_device, mesh=mesh, in_specs=(replicated, replicated, sharded, replicated),
                         out_specs=replicated, check_vma=False)


DIAGNOSTICS = "diagnostics"  # metrics key of the submission's diagnostics (never summed)


def make_train_step(workload: Workload, update: Callable[..., Any], static_hparams: Hparams,
                    ctx: SubmissionContext, mesh: Mesh, unroll: int | None = None,
                    diagnostics: Callable[[Any], Mapping[str, jax.Array]] | None = None
                    ) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """step(state, batch, rng, step, traced_hparams) -> (state, metrics); metrics has the train
    sums and 'finite'.

    The submission's update sees ``{**static_hparams, **traced_hparams}``: the static ones are
    Python values of this program, the traced ones (the numeric hyperparameters, harness/spec.py)
    scalar arguments, so that other values of them run the same compiled program. Micro-batches of
    the current phase's micro_batch_size (ctx.phase); `unroll` defaults to default_unroll. With
    `diagnostics` (the submission's optional diagnostics(opt_state) -> dict of small arrays),
    metrics["diagnostics"] holds them for the new optimizer state, computed inside the step:
    nothing extra is transferred until the runner reads them. Build it through
    harness.plan.RunPlan.train_step, which holds the phase's validated hparams and context.
    """
    gradients = data_parallel_gradients(workload, mesh, ctx.phase.micro_batch_size, unroll)

    def train_step(state: TrainState, batch: Batch, rng: jax.Array, step: jax.Array,
                   traced_hparams: Mapping[str, jax.Array]) -> tuple[TrainState, dict[str, jax.Array]]:
        step_rng = jax.random.fold_in(rng, step)
        grads, model_state, sums = gradients(state.params, state.model_state, batch, step_rng)
        hparams = {**static_hparams, **traced_hparams}
        updates, opt_state = update(grads, state.opt_state, state.params, hparams, ctx)
        params = optax.apply_updates(state.params, updates)
        metrics: dict[str, Any] = dict(sums, finite=jnp.logical_and(all_finite(sums["loss"]),
                                                                    all_finite(params)))
        if diagnostics is not None:
            metrics[DIAGNOSTICS] = dict(diagnostics(opt_state))
        return TrainState(params, model_state, opt_state), metrics

    return train_step


def traced_dtype() -> Any:
    """The dtype of traced hyperparameters: the default float (float32, float64 with x64)."""
    return jnp.zeros(()).dtype


def make_eval_step(workload: Workload) -> Callable[..., dict[str, jax.Array]]:
    def eval_step(params: Any, model_state: Any, batch: Batch) -> dict[str, jax.Array]:
        return workload.eval_sums(params, model_state, batch)

    return eval_step
