"""Data-parallel speedup on this host (a script, not a test): the training step of a workload on
a mesh of 2 devices versus 1, measured alternately in one run.

  python -m harness.bench_parallel [--workload=fashion_mnist_resnet] [--steps=10] [--rounds=3]

Rounds alternate which side goes first (ABBA). On a CPU-only machine the devices are host devices:
the script re-executes itself with XLA_FLAGS=--xla_force_host_platform_device_count=2 when jax
sees fewer than 2 devices.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from typing import Any

from absl import flags

from harness import cli
from harness.errors import UserError


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("workload", "fashion_mnist_resnet", "Workload to measure.", flag_values=fv)
    flags.DEFINE_integer("steps", 10, "Training steps per measurement.", flag_values=fv)
    flags.DEFINE_integer("rounds", 3, "Alternating rounds.", flag_values=fv)


def seconds_per_step(run_plan: Any, data: Any, steps: int) -> float:
    """Seconds per training step of the plan's phase 0 on its mesh (compiled and warm first)."""
    import jax
    import numpy as np

    from harness import parallel
    from harness.training import TrainState

    wl, first = run_plan.workload, run_plan.phases[0]
    params, model_state, _ = wl.init(jax.random.PRNGKey(0))
    state = parallel.put_replicated(TrainState(params, model_state, run_plan.submission.init(
        params, first.hparams, first.ctx)), run_plan.mesh)
    step, traced = run_plan.jit_train_step(0), run_plan.traced_arguments(0)
    batches = wl.train_batches(data, 0)
    state, _ = step(state, parallel.put_batch(next(batches), run_plan.mesh), jax.random.PRNGKey(0),
                    np.int32(0), traced)
    jax.block_until_ready(state)  # compiled and warm
    start = time.perf_counter()
    for i in range(steps):
        state, _ = step(state, parallel.put_batch(next(batches), run_plan.mesh), jax.random.PRNGKey(0),
                        np.int32(i), traced)
    jax.block_until_ready(state)
    return (time.perf_counter() - start) / steps


def main(argv: list[str], fv: flags.FlagValues) -> int:
    del argv
    import jax

    if len(jax.devices()) < 2:
        if os.environ.get("_BENCH_PARALLEL_CHILD"):
            raise UserError("still fewer than 2 devices after setting XLA_FLAGS")
        env = dict(os.environ, _BENCH_PARALLEL_CHILD="1",
                   XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") +
                              " --xla_force_host_platform_device_count=2").strip())
        os.execve(sys.executable, [sys.executable, "-m", "harness.bench_parallel", *sys.argv[1:]], env)

    from harness import plan
    from harness.timing import alternate, median_and_quartiles

    plans = {n: plan.build(fv.workload, "nesterov", devices=jax.devices()[:n]) for n in (1, 2)}
    data = plans[1].workload.load_data(None)
    phase = plans[1].phases[0].phase
    print(f"{fv.workload}: global batch {phase.global_batch_size}, micro-batch {phase.micro_batch_size}, "
          f"{fv.steps} steps x {fv.rounds} rounds; devices {jax.devices()[:2]}")
    sides = {n: functools.partial(seconds_per_step, plans[n], data, fv.steps) for n in (1, 2)}

    def report(r: int, t: dict[int, list[float]]) -> None:
        print(f"  round {r}: 1 device {t[1][-1]:.3f} s/step, 2 devices {t[2][-1]:.3f} s/step", flush=True)

    times = alternate(sides, fv.rounds, report)
    speedups = [one / two for one, two in zip(times[1], times[2])]
    print(f"2-device speedup over 1 device, median of the per-round ratios: "
          f"{median_and_quartiles(speedups)}x")
    return 0


if __name__ == "__main__":
    cli.run(define_flags, main)
