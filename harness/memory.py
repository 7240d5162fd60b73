"""Compiled memory per device of a workload's training step, and the device count it needs.

  python -m harness.memory --workload=imagenet_resnet50 --devices=64,128,256 [--submission=nesterov]
      [--device_memory_gib=16]

Data parallel with replicated parameters (harness/parallel.py) runs the same program on every
device, on its slice of the global batch. So the memory of one device among N is the memory of
the single-device step compiled for a batch of global_batch / N: it is compiled here from shapes
alone (jax.ShapeDtypeStruct, no data, no parameters allocated) and measured with XLA's compiled
memory analysis. The micro-batch scan is compiled rolled (unroll=1), as it runs on GPU/TPU
(harness/training.default_unroll); the cross-device mean adds only a buffer the size of the
gradients. Numbers are what XLA's CPU compiler plans; an accelerator compiler plans its own
layouts, so treat them as estimates within tens of percent.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np
from absl import flags

from harness import cli, plan
from harness.errors import UserError
from harness.formatting import describe_phases

GIB = 2 ** 30


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("workload", None, "Workload name.", flag_values=fv)
    flags.DEFINE_string("submission", "nesterov", "Submission whose optimizer state is counted.",
                        flag_values=fv)
    flags.DEFINE_string("devices", None, "Comma-separated device counts (default: powers of two).",
                        flag_values=fv)
    flags.DEFINE_float("device_memory_gib", 16.0, "Memory of one device, for the devices-needed line.",
                       flag_values=fv)


@dataclasses.dataclass(frozen=True)
class MemoryReport:
    phase: str
    devices: int
    per_device_batch: int
    argument_bytes: int  # state + batch
    output_bytes: int
    alias_bytes: int  # outputs written into donated inputs
    temp_bytes: int  # activations and other scratch
    compile_seconds: float

    @property
    def total_bytes(self) -> int:
        return self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes


def phase_memory(run_plan: plan.RunPlan, devices: int) -> list[MemoryReport]:
    """One report per phase of a plan (on one device) for data parallelism over `devices` devices:
    each phase's step compiled for the per-device batch, rolled scan, donated state."""
    reports = []
    for k, p in enumerate(run_plan.phases):
        local = run_plan.per_device_batch(k, devices)
        start = time.perf_counter()
        compiled = run_plan.compile_train_step(k, unroll=1, donate=True, batch_size=local)
        seconds = time.perf_counter() - start
        m = compiled.memory_analysis()
        reports.append(MemoryReport(p.phase.name, devices, local, int(m.argument_size_in_bytes),
                                    int(m.output_size_in_bytes), int(m.alias_size_in_bytes),
                                    int(m.temp_size_in_bytes), seconds))
    return reports


def device_counts(run_plan: plan.RunPlan, given: str | None) -> list[int]:
    """--devices, else the powers of two from 8 up to the most devices every phase can use."""
    if given:
        try:
            return [int(c) for c in given.split(",")]
        except ValueError:
            raise UserError(f"--devices must be comma-separated integers, got {given!r}") from None
    most = min(p.phase.global_batch_size // p.phase.micro_batch_size for p in run_plan.phases)
    return [2 ** i for i in range(int(np.log2(most)) + 1) if 2 ** i >= 8]


def main(argv: list[str], fv: flags.FlagValues) -> int:
    """Print the memory table for --workload and the device count that fits."""
    del argv
    if not fv.workload:
        raise UserError("--workload is required")
    run_plan = plan.build(fv.workload, fv.submission, devices=jax.devices()[:1])
    counts = device_counts(run_plan, fv.devices)
    micro = min(p.phase.micro_batch_size for p in run_plan.phases)
    print(f"{fv.workload}: {describe_phases([p.phase for p in run_plan.phases])}; submission "
          f"{fv.submission}; micro-batch >= {micro}; compiled for CPU with a rolled scan")
    print(f"{'devices':>8} {'phase':>10} {'batch/dev':>10} {'args GiB':>9} {'temp GiB':>9} "
          f"{'total GiB':>10} {'compile s':>10}")
    fits = {}
    for n in counts:
        reports = phase_memory(run_plan, n)
        for r in reports:
            print(f"{n:>8} {r.phase:>10} {r.per_device_batch:>10} {r.argument_bytes / GIB:>9.2f} "
                  f"{r.temp_bytes / GIB:>9.2f} {r.total_bytes / GIB:>10.2f} {r.compile_seconds:>10.1f}",
                  flush=True)
        fits[n] = max(r.total_bytes for r in reports) <= fv.device_memory_gib * GIB
    needed = [n for n in counts if fits[n]]
    print(f"devices needed at {fv.device_memory_gib:g} GiB per device: "
          + (f"{min(needed)} (smallest of those measured that fits)" if needed else
             f"more than {max(counts)}"))
    return 0


if __name__ == "__main__":
    cli.run(define_flags, main)
