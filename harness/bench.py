"""Performance checks of the harness, measured side by side in one run (a script, not a test).

  python -m harness.bench [--workload=fashion_mnist_resnet] [--steps=20] [--rounds=3]

1. Harness overhead: steps/s of the harness (Sweep.run_seed: progress bar, divergence checks,
   metric sums, SQLite) divided by steps/s of a bare hand-written jitted loop doing the same math
   (same model, micro-batches and submission update, the same evaluations with its clock paused) on
   the same workload, batch and number of steps. Goal >= 0.98. Also printed: the bare loop without
   evaluations.
2. Micro-batch accumulation: time of one training step at the global batch computed as micro-batches
   in an unrolled lax.scan, versus as one big batch. Goal >= 2.5x faster.
Rounds alternate between the two sides, and which side goes first (ABBA), so that machine noise
hits both; medians are reported.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from absl import logging as absl_logging

from harness import store
from harness.runner import Sweep, SweepConfig

FLAGS = flags.FLAGS
flags.DEFINE_string("workload", "fashion_mnist_resnet", "Workload to measure.")
flags.DEFINE_integer("steps", 39, "Training steps per measurement (one epoch of the ResNet workload).")
flags.DEFINE_integer("rounds", 3, "Alternating rounds per comparison.")

LR, MOMENTUM = 0.1, 0.9  # any values: only speed is measured


def bare_loop(sweep: Sweep, steps: int, evaluate: bool = True) -> float:
    """Seconds for `steps` steps of a hand-written loop: scan over micro-batches, then the same
    submission update (Nesterov with the same hparams, schedule and weight decay) as the harness.

    With `evaluate`, it pauses its clock for the same evaluations (validation and test) at the same
    cadence as the harness, so both sides do the same work.
    """
    workload, data = sweep.workload, sweep.data
    eval_sums = jax.jit(workload.eval_sums)
    sub, hparams, ctx = sweep.submission, sweep.hparams, sweep.ctx
    n_micro = workload.global_batch_size // workload.micro_batch_size

    @jax.jit
    def step(params: Any, model_state: Any, opt_state: Any, x: jax.Array, y: jax.Array) -> Any:
        def body(carry: Any, mb: tuple[jax.Array, jax.Array]) -> Any:
            g_acc, s_acc = carry
            grads, (new_state, _) = jax.grad(workload.train_loss, has_aux=True)(
                params, model_state, {"x": mb[0], "y": mb[1]}, None)
            return (jax.tree.map(jnp.add, g_acc, grads), jax.tree.map(jnp.add, s_acc, new_state)), None

        zeros = jax.tree.map(jnp.zeros_like, (params, model_state))
        micro = lambda a: a.reshape(n_micro, -1, *a.shape[1:])  # noqa: E731
        (g, s), _ = jax.lax.scan(body, zeros, (micro(x), micro(y)), unroll=n_micro)
        g = jax.tree.map(lambda a: a / n_micro, g)
        updates, opt_state = sub.update(g, opt_state, params, hparams, ctx)
        return optax.apply_updates(params, updates), jax.tree.map(lambda a: a / n_micro, s), opt_state

    params, model_state, _ = workload.init(jax.random.PRNGKey(0))
    opt_state = sub.init(params, hparams, ctx)
    batches = workload.train_batches(data, 0)
    b = next(batches)
    jax.block_until_ready(step(params, model_state, opt_state, b["x"], b["y"]))  # compile
    elapsed, start = 0.0, time.perf_counter()
    for i in range(1, steps + 1):
        b = next(batches)
        params, model_state, opt_state = step(params, model_state, opt_state, b["x"], b["y"])
        if evaluate and i % workload.eval_every_steps == 0 and i != steps:
            jax.block_until_ready(params)
            elapsed += time.perf_counter() - start
            jax.block_until_ready([eval_sums(params, model_state, e) for split in ("validation", "test")
                                   for e in workload.eval_batches(data, split)])
            start = time.perf_counter()
    jax.block_until_ready(params)
    return elapsed + time.perf_counter() - start


def harness_loop(sweep: Sweep, conn: Any) -> float:
    """Training seconds the harness measured itself (eval excluded, synced) for its step budget."""
    return sweep.run_seed(conn, seed=0).train_seconds


def step_time(workload: Any, data: Any, micro: bool, steps: int) -> float:
    """Seconds per step at the global batch: micro-batches in an unrolled scan, or one big batch."""
    params, model_state, _ = workload.init(jax.random.PRNGKey(0))
    n_micro = workload.global_batch_size // workload.micro_batch_size if micro else 1
    grad_fn = jax.grad(workload.train_loss, has_aux=True)

    @jax.jit
    def grads_of(params: Any, x: jax.Array, y: jax.Array) -> Any:
        if n_micro == 1:
            return grad_fn(params, model_state, {"x": x, "y": y}, None)[0]
        xs = (x.reshape(n_micro, -1, *x.shape[1:]), y.reshape(n_micro, -1))
        body = lambda acc, mb: (jax.tree.map(  # noqa: E731
            jnp.add, acc, grad_fn(params, model_state, {"x": mb[0], "y": mb[1]}, None)[0]), None)
        return jax.lax.scan(body, jax.tree.map(jnp.zeros_like, params), xs, unroll=n_micro)[0]

    b = next(workload.train_batches(data, 0))
    jax.block_until_ready(grads_of(params, b["x"], b["y"]))
    start = time.perf_counter()
    for _ in range(steps):
        out = grads_of(params, b["x"], b["y"])
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / steps


def main(argv: list[str]) -> None:
    absl_logging.set_verbosity(absl_logging.WARNING)  # keep the terminal for progress and results
    del argv
    steps, rounds = FLAGS.steps, FLAGS.rounds
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SweepConfig(workload=FLAGS.workload, submission="nesterov", budget=steps,
                          hparams={"learning_rate": LR, "momentum": MOMENTUM},
                          results=os.path.join(tmp, "bench.db"), progress=False)
        sweep = Sweep(cfg)
        workload, data = sweep.workload, sweep.data
        print(f"{workload.name}: global batch {workload.global_batch_size}, micro-batch "
              f"{workload.micro_batch_size}, {steps} steps x {rounds} rounds, devices {jax.devices()}")
        conn = store.connect(cfg.results)
        harness_s, bare_s, no_eval_s = [], [], []
        for r in range(rounds):
            # Alternate which side goes first (ABBA) so that drift of the machine's speed within a
            # round does not favour one side.
            if r % 2 == 0:
                harness_s.append(harness_loop(sweep, conn))
                bare_s.append(bare_loop(sweep, steps))
            else:
                bare_s.append(bare_loop(sweep, steps))
                harness_s.append(harness_loop(sweep, conn))
            no_eval_s.append(bare_loop(sweep, steps, evaluate=False))
            print(f"  round {r}: harness {steps / harness_s[-1]:.3f} steps/s, bare loop "
                  f"{steps / bare_s[-1]:.3f} steps/s (ratio {bare_s[-1] / harness_s[-1]:.3f}), bare "
                  f"loop without evals {steps / no_eval_s[-1]:.3f} steps/s")
        conn.close()
    ratio = statistics.median(bare_s) / statistics.median(harness_s)
    paired = statistics.median(b / h for b, h in zip(bare_s, harness_s))
    print(f"harness/bare steps-per-second ratio: {ratio:.3f} (ratio of medians), {paired:.3f} (median "
          f"of the per-round ratios)  (goal >= 0.98)")
    print(f"harness/bare-without-evals ratio (medians): "
          f"{statistics.median(no_eval_s) / statistics.median(harness_s):.3f}")

    micro_t, big_t = [], []
    for r in range(rounds):
        for micro in ((True, False) if r % 2 == 0 else (False, True)):
            (micro_t if micro else big_t).append(step_time(workload, data, micro=micro,
                                                           steps=max(3, steps // 4)))
        print(f"  round {r}: micro-batches {micro_t[-1]:.3f} s/step, one big batch {big_t[-1]:.3f} s/step")
    speedup = statistics.median(big_t) / statistics.median(micro_t)
    print(f"micro-batch accumulation speedup over one big batch of {workload.global_batch_size} "
          f"(medians): {speedup:.2f}x  (goal >= 2.5x)")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    app.run(main)
