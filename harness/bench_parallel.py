"""Data-parallel speedup on this host (a script, not a test): the training step of a workload on
a mesh of 2 devices versus 1, measured alternately in one run.

  python -m harness.bench_parallel [--workload=fashion_mnist_resnet] [--steps=10] [--rounds=3]

Rounds alternate which side goes first (ABBA). On a CPU-only machine the devices are host devices: the script re-executes itself with
XLA_FLAGS=--xla_force_host_platform_device_count=2 when jax sees fewer than 2 devices.
"""

from __future__ import annotations

import os
import sys
import time

from absl import app, flags
from absl import logging as absl_logging

FLAGS = flags.FLAGS
flags.DEFINE_string("workload", "fashion_mnist_resnet", "Workload to measure.")
flags.DEFINE_integer("steps", 10, "Training steps per measurement.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds.")


def seconds_per_step(workload: object, data: object, mesh: object, steps: int) -> float:
    import jax
    import numpy as np

    from harness import parallel, submissions
    from harness.spec import SubmissionContext
    from harness.training import TrainState, donate_state, make_train_step

    sub = submissions.load("nesterov")
    hp = dict(sub.defaults)
    params, model_state, types = workload.init(jax.random.PRNGKey(0))  # type: ignore[attr-defined]
    ctx = SubmissionContext(workload.name, types, 100, workload.global_batch_size,  # type: ignore[attr-defined]
                            tuple(workload.phases))  # type: ignore[attr-defined]
    state = parallel.put_replicated(TrainState(params, model_state, sub.init(params, hp, ctx)), mesh)
    step = jax.jit(make_train_step(workload, sub.update, hp, ctx, mesh),
                   donate_argnums=0 if donate_state() else ())
    batches = workload.train_batches(data, 0)  # type: ignore[attr-defined]
    state, _ = step(state, parallel.put_batch(next(batches), mesh), jax.random.PRNGKey(0), np.int32(0))
    jax.block_until_ready(state)  # compiled and warm
    start = time.perf_counter()
    for i in range(steps):
        state, _ = step(state, parallel.put_batch(next(batches), mesh), jax.random.PRNGKey(0), np.int32(i))
    jax.block_until_ready(state)
    return (time.perf_counter() - start) / steps


def main(argv: list[str]) -> None:
    del argv
    absl_logging.set_verbosity(absl_logging.WARNING)
    import jax

    if len(jax.devices()) < 2:
        if os.environ.get("_BENCH_PARALLEL_CHILD"):
            sys.exit("error: still fewer than 2 devices after setting XLA_FLAGS")
        env = dict(os.environ, _BENCH_PARALLEL_CHILD="1",
                   XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") +
                              " --xla_force_host_platform_device_count=2").strip())
        os.execve(sys.executable, [sys.executable, "-m", "harness.bench_parallel", *sys.argv[1:]], env)

    from harness import parallel
    from harness.timing import alternate, median_and_quartiles
    from workloads import get_workload

    wl = get_workload(FLAGS.workload)
    data = wl.load_data(None)
    meshes = {1: parallel.data_mesh(jax.devices()[:1]), 2: parallel.data_mesh(jax.devices()[:2])}
    print(f"{wl.name}: global batch {wl.global_batch_size}, micro-batch {wl.micro_batch_size}, "
          f"{FLAGS.steps} steps x {FLAGS.rounds} rounds; devices {jax.devices()[:2]}")
    sides = {n: (lambda n=n: seconds_per_step(wl, data, meshes[n], FLAGS.steps)) for n in (1, 2)}

    def report(r: int, t: dict[int, list[float]]) -> None:
        print(f"  round {r}: 1 device {t[1][-1]:.3f} s/step, 2 devices {t[2][-1]:.3f} s/step", flush=True)

    times = alternate(sides, FLAGS.rounds, report)
    speedups = [one / two for one, two in zip(times[1], times[2])]
    print(f"2-device speedup over 1 device, median of the per-round ratios: "
          f"{median_and_quartiles(speedups)}x")


if __name__ == "__main__":
    app.run(main)
