"""Speed of `--ray` (a script, not a test): seeds of a workload on Ray workers with one compute
thread each vs the sequential harness in one process with XLA's default threads (every core),
side by side in one run.

  python -m harness.bench_ray [--workload=fashion_mnist_resnet] [--submission=nesterov]
                              [--seeds=4] [--rounds=2] [--budget=STEPS] [--workers=2]

Both sides load the data and compile first (printed apart: each pays it once per process, Ray's
workers once each, the second from the first's compilation cache). Then rounds alternate (ABBA;
this machine's speed drifts by up to 30% over minutes): a round of a side runs --seeds seeds and
counts runs per hour from its wall time. Printed: runs per hour both ways, per round and the
median, and the ratio Ray / sequential (on 2 cores, 2 workers of one thread against one process
of two threads may be near 1). Ray's overhead per run: the driver's seconds from handing a run to
a worker to having written it into the results database (harness/ray_runner.py, WorkerPool.timings)
minus the worker's seconds in the run itself (Sweep.run_seed), as a fraction of the latter; goal
at most 3%.
"""

from __future__ import annotations

import collections
import os
import statistics
import tempfile
import time

from absl import flags

from harness import cli


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("workload", "fashion_mnist_resnet", "Workload.", flag_values=fv)
    flags.DEFINE_string("submission", "nesterov", "Submission (its default hparams).", flag_values=fv)
    flags.DEFINE_integer("seeds", 4, "Seeds per round and side.", flag_values=fv)
    flags.DEFINE_integer("rounds", 2, "Alternating rounds (ABBA).", flag_values=fv)
    flags.DEFINE_integer("budget", None, "Steps per run (default: the workload's).", flag_values=fv)
    flags.DEFINE_integer("workers", 2, "Ray workers (one CPU and one compute thread each).", flag_values=fv)


def main(argv: list[str], fv: flags.FlagValues) -> int:
    del argv
    from harness import ray_cluster, store
    from harness.errors import UserError
    from harness.ray_runner import PlanSpec, WorkerPool
    from harness.runner import RunOptions, RunSummary, RunTask, Sweep
    from harness.timing import alternate, median_and_quartiles

    if fv.seeds < 1 or fv.rounds < 1 or fv.workers < 1:
        raise UserError("--seeds, --rounds and --workers must be >= 1")
    spec = PlanSpec(fv.workload, fv.submission, budget=fv.budget)
    base = spec.build()
    print(f"{base.describe()}; {fv.rounds} round(s) of {fv.seeds} seed(s) per side", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sweep = Sweep(base, RunOptions(results=os.path.join(tmp, "sequential.db"), progress=False))
        print(f"sequential: data and compilation {time.perf_counter() - start:.1f} s", flush=True)
        sequential_db = store.connect(os.path.join(tmp, "sequential.db"))
        ray_db = store.connect(os.path.join(tmp, "ray.db"))
        settings = ray_cluster.RaySettings(workers=fv.workers, cpus_per_run=1,
                                           compilation_cache=os.path.join(tmp, "cache"))
        next_seed = iter(range(2 ** 30))

        def sequential() -> float:
            start = time.perf_counter()
            for _ in range(fv.seeds):
                sweep.run_seed(sequential_db, next(next_seed))
            return 3600 * fv.seeds / (time.perf_counter() - start)

        with ray_cluster.session(settings):
            start = time.perf_counter()
            options = RunOptions(results=os.path.join(tmp, "ray.db"), progress=False)
            with WorkerPool(spec, base, options, settings, fv.workers) as pool:
                print(f"ray: workers ready in {time.perf_counter() - start:.1f} s (compilation "
                      f"{pool.compile_seconds:.1f} s summed over the workers)", flush=True)

                def on_ray() -> float:
                    pending = collections.deque(next(next_seed) for _ in range(fv.seeds))

                    def next_task() -> RunTask | None:
                        return RunTask(base, pending.popleft()) if pending else None

                    def done(task: RunTask, summary: RunSummary) -> None:
                        del task, summary

                    start = time.perf_counter()
                    pool.map_runs(ray_db, next_task, done, lambda: len(pending))
                    return 3600 * fv.seeds / (time.perf_counter() - start)

                def report(r: int, rates: dict[str, list[float]]) -> None:
                    print(f"  round {r}: sequential {rates['sequential'][-1]:.0f} runs/h, ray "
                          f"{rates['ray'][-1]:.0f} runs/h", flush=True)

                rates = alternate({"sequential": sequential, "ray": on_ray}, fv.rounds, report)
                timings = list(pool.timings)
                overhead = [(trip - run) / run for trip, run in timings]
                seconds = [trip - run for trip, run in timings]
        sequential_db.close()
        ray_db.close()
    seq, ray = statistics.median(rates["sequential"]), statistics.median(rates["ray"])
    print(f"runs per hour, median over rounds: sequential (1 process, default threads) {seq:.0f}, ray "
          f"({fv.workers} workers x 1 thread) {ray:.0f}; ray / sequential {ray / seq:.2f}")
    print(f"ray overhead per run (driver round trip - worker's run) / run, over {len(overhead)} runs: "
          f"{median_and_quartiles(overhead)}, max {max(overhead):.3f} (goal <= 0.03); in seconds: "
          f"median {statistics.median(seconds):.4f}, max {max(seconds):.4f}, of runs of median "
          f"{statistics.median(run for _, run in timings):.1f} s")
    return 0


if __name__ == "__main__":
    cli.run(define_flags, main)
