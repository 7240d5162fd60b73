"""The batch-size axis: a workload at another global batch size (``--batch_size=B``), derived from
the scaling rule the workload declares (harness/spec.py ``BatchScaling``). The one place of the
arithmetic; `resized` is what harness/plan.py calls.

B is the first phase's global batch. For the variant:

* every phase's global batch is B_k = B_k0 * B / B_10 (the phases keep their ratios: pydocs_bert's
  128 then 64 become 256 then 128), and its micro-batch (the gradient-accumulation unit and ghost
  batch-norm span) is kept, so each B_k must be a whole multiple of it (`batch_unit`);
* steps: the ones the rule lists for B (a paper's exact counts, e.g. You et al. Table 1 for BERT),
  else fixed epochs, ceil(examples_k / B_k) per phase (examples_k = epochs x train examples as
  declared, else what the workload's own phase processes: steps_k0 x B_k0);
* the evaluation and checkpoint cadences keep their spacing in examples, ceil(n x B_10 / B) steps
  (at least 1; 0 stays 0), so time-to-target has the same resolution in epochs at every batch;
* the target: the variant's own entry in reference_results/targets.json (key
  ``<workload>@batch=<B>``, workloads/targets.py) when there is one, else the workload's: fixed-epoch
  scaling keeps the task and the data seen, so it keeps the quality bar (Shallue et al. 2019 measure
  steps to one fixed target across batch sizes).

The workload's own batch size is no variant: `resized` returns the workload unchanged, so a run with
``--batch_size`` equal to the default is the same row as one without.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from harness.errors import UserError
from harness.spec import BatchVariant, Phase, Workload, batch_scaling_rule
from workloads import targets


def ceil_div(a: int, b: int) -> int:
    """ceil(a / b) for positive ints, exactly (no float rounding of large step counts)."""
    return -(-a // b)


def batch_unit(phases: Sequence[Phase]) -> int:
    """The smallest first-phase batch B for which every phase's batch B_k = B_k0 * B / B_10 is a
    whole multiple of its micro-batch; the valid batch sizes are its multiples.

    Phase k needs B * B_k0 divisible by B_10 * m_k, i.e. B a multiple of
    B_10 * m_k / gcd(B_10 * m_k, B_k0) (m_0 for the first phase); the unit is their lcm.
    """
    b10 = phases[0].global_batch_size
    unit = 1
    for p in phases:
        span = b10 * p.micro_batch_size
        unit = math.lcm(unit, span // math.gcd(span, p.global_batch_size))
    return unit


def _check(workload: Workload, batch_size: int) -> None:
    """UserError (one line) unless `batch_size` is a batch the workload can run."""
    if batch_size < 1:
        raise UserError(f"--batch_size must be a positive global batch size, got {batch_size}")
    phases = tuple(workload.phases)
    unit = batch_unit(phases)
    if batch_size % unit:
        micro = ", ".join(str(p.micro_batch_size) for p in phases)
        examples = ", ".join(str(unit * k) for k in (1, 2, 4, 8))
        raise UserError(f"--batch_size={batch_size} does not split into {workload.name}'s micro-batches "
                        f"({micro}, kept at every batch size); valid batch sizes are the multiples of {unit} "
                        f"({examples}, ...)")
    limit = batch_scaling_rule(workload).max_batch_size
    if limit is not None and batch_size > limit:
        raise UserError(f"--batch_size={batch_size} exceeds the {limit:,} training examples of "
                        f"{workload.name}; give at most {limit - limit % unit}")


def variant(workload: Workload, batch_size: int) -> BatchVariant:
    """The workload's phases and cadences at first-phase batch `batch_size` (module docstring);
    UserError for a batch it cannot run."""
    _check(workload, batch_size)
    rule = batch_scaling_rule(workload)
    phases = tuple(workload.phases)
    b10 = phases[0].global_batch_size
    batches = [p.global_batch_size * batch_size // b10 for p in phases]
    listed = rule.listed_steps.get(batch_size)
    if listed is not None:
        if len(listed) != len(phases):
            raise ValueError(f"{workload.name}: listed steps {listed} at batch {batch_size} do not give one "
                             f"count per phase ({len(phases)})")
        steps = list(listed)
    else:
        examples = rule.examples or tuple(p.steps * p.global_batch_size for p in phases)
        if len(examples) != len(phases):
            raise ValueError(f"{workload.name}: BatchScaling.examples {examples} do not give one count per "
                             f"phase ({len(phases)})")
        steps = [ceil_div(e, b) for e, b in zip(examples, batches)]
    resized = tuple(dataclasses.replace(p, steps=n, global_batch_size=b)
                    for p, n, b in zip(phases, steps, batches))
    every = workload.checkpoint_every
    return BatchVariant(batch_size=batch_size, phases=resized,
                        eval_every_steps=max(1, ceil_div(workload.eval_every_steps * b10, batch_size)),
                        checkpoint_every=max(1, ceil_div(every * b10, batch_size)) if every else 0,
                        target=targets.variant_target(workload.name, batch_size))


def resized(workload: Workload, batch_size: int | None) -> Workload:
    """The workload at first-phase global batch `batch_size` (its `with_batch` hook applied to
    `variant`); the workload itself for None or its own batch size."""
    if batch_size is None or batch_size == workload.phases[0].global_batch_size:
        return workload
    hook = getattr(workload, "with_batch", None)
    if hook is None:
        raise UserError(f"workload {workload.name} does not take --batch_size (it defines no with_batch); "
                        f"run it at its own batch size {workload.phases[0].global_batch_size}")
    resized_workload: Workload = hook(variant(workload, batch_size))
    return resized_workload


def describe(workload: Workload) -> str:
    """One line: how the workload's steps follow --batch_size (for `python -m harness list`)."""
    if getattr(workload, "with_batch", None) is None:
        return "--batch_size: not supported"
    rule = batch_scaling_rule(workload)
    unit = batch_unit(tuple(workload.phases))
    listed = (f"; steps as listed at {', '.join(str(b) for b in sorted(rule.listed_steps))}"
              if rule.listed_steps else "")
    source = f" ({rule.source})" if rule.source else ""
    epochs = "fixed epochs" if rule.examples is None else \
        "fixed epochs (" + " + ".join(f"{e:,}" for e in rule.examples) + " examples)"
    return f"--batch_size: multiples of {unit}, {epochs}{listed}{source}"
