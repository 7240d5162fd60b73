"""How far to unroll the micro-batch scan on CPU (a script, not a test): the gradient computation of
a workload at larger global batches, its lax.scan over micro-batches fully unrolled versus unrolled
by a bound (a partly rolled loop), measured alternately in one run.

  python -m harness.bench_unroll [--workload=fashion_mnist_resnet] [--batch_sizes=2560,5120,10240]
                                 [--bound=32] [--rounds=4] [--steps=3]

For each batch size (a workload variant, harness/batch_scaling.py: micro-batches of the workload's
size), both sides are compiled first (the compile seconds include the first execution) and then
timed per step in ABBA rounds (harness/timing.alternate). It prints, per batch size, the number of
micro-batches, both compile times and the median of the per-round ratios (bounded s/step) / (full
s/step): above 1 means full unrolling is faster. harness/training.MAX_UNROLL is chosen from this:
the steps a run at that batch takes must repay the extra compile time of a longer unroll.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from absl import flags

from harness import cli


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("workload", "fashion_mnist_resnet", "Workload to measure.", flag_values=fv)
    flags.DEFINE_list("batch_sizes", ["2560", "5120", "10240"], "Global batch sizes (workload variants).",
                      flag_values=fv)
    flags.DEFINE_integer("bound", 32, "The unroll bound to compare with full unrolling.", flag_values=fv)
    flags.DEFINE_integer("rounds", 4, "Alternating rounds per batch size.", flag_values=fv)
    flags.DEFINE_integer("steps", 3, "Gradient steps per measurement.", flag_values=fv)


def compiled(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Callable[..., Any], float]:
    """(fn, seconds to compile it and run it once)."""
    import jax

    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return fn, time.perf_counter() - start


def main(argv: list[str], fv: flags.FlagValues) -> int:
    del argv
    import jax

    import workloads
    from harness import batch_scaling
    from harness.bench import gradient_step, seconds_per_step
    from harness.timing import alternate, median_and_quartiles

    base = workloads.get_workload(fv.workload)
    data = base.load_data(None)
    print(f"{fv.workload} on {jax.default_backend()}: full unroll vs unroll {fv.bound}, {fv.steps} steps x "
          f"{fv.rounds} rounds per batch size", flush=True)
    for batch_size in (int(b) for b in fv.batch_sizes):
        wl = batch_scaling.resized(base, batch_size)
        micro_batch = wl.phases[0].micro_batch_size
        n_micro = batch_size // micro_batch
        bounded = min(n_micro, fv.bound)
        params, model_state, _ = wl.init(jax.random.PRNGKey(0))
        args = (params, model_state, next(wl.train_batches(data, 0)), jax.random.PRNGKey(0))
        sides: dict[str, Callable[[], float]] = {}
        compile_seconds: dict[str, float] = {}
        for name, unroll in (("full", n_micro), ("bounded", bounded)):
            fn, compile_seconds[name] = compiled(gradient_step(wl, micro_batch, unroll), args)
            sides[name] = functools.partial(seconds_per_step, fn, args, fv.steps)

        def report(r: int, t: dict[str, list[float]]) -> None:
            print(f"  round {r}: full {t['full'][-1]:.3f} s/step, bounded {t['bounded'][-1]:.3f} s/step",
                  flush=True)

        times = alternate(sides, fv.rounds, report)
        ratios = [b / f for b, f in zip(times["bounded"], times["full"])]
        print(f"batch {batch_size} ({n_micro} micro-batches of {micro_batch}): compile "
              f"{compile_seconds['full']:.0f} s (full, unroll {n_micro}) vs {compile_seconds['bounded']:.0f} s "
              f"(unroll {bounded}); bounded / full time per step {median_and_quartiles(ratios)}",
              flush=True)
    return 0


if __name__ == "__main__":
    cli.run(define_flags, main)
