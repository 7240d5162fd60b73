"""Turn an optax transformation built from (hparams, ctx) into the submission protocol's functions.

The pattern of every optax-built submission (harness/spec.py, "Static and traced hyperparameters")::

    STATIC_HPARAMS: frozenset[str] = ...          # floats that change the program (often empty)

    def optimizer(hparams, ctx) -> optax.GradientTransformation:   # no checks, no Python branches
        ...                                                          # on numeric (traced) hparams

    VALID_RANGES: valid_ranges.Ranges = {...}      # where the update rule is defined, per hparam

    def check(hparams, ctx) -> None:               # other checks (schedule, files), concrete values,
        ...                                         # UserError

    init, update, next_phase, check_hparams = protocol.from_optax(optimizer, check, "name", VALID_RANGES)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import optax

from harness import spec
from submissions.lib import valid_ranges

Build = Callable[[spec.Hparams, spec.SubmissionContext], optax.GradientTransformation]
Init = Callable[[spec.Params, spec.Hparams, spec.SubmissionContext], Any]
Update = Callable[[spec.Params, Any, spec.Params, spec.Hparams, spec.SubmissionContext],
                  tuple[spec.Params, Any]]
NextPhase = Callable[[Any, spec.Params, spec.Hparams, spec.SubmissionContext], Any]
Check = Callable[[spec.Hparams, spec.SubmissionContext], None]


class Protocol(NamedTuple):
    """A submission's protocol functions (harness/spec.py), in the order a module unpacks them."""

    init: Init
    update: Update
    next_phase: NextPhase
    check_hparams: Check


def from_optax(build: Build, check: Check, name: str, ranges: valid_ranges.Ranges) -> Protocol:
    """(init, update, next_phase, check_hparams) for the submission `name` whose optimizer is the
    optax transformation `build` returns, whose hyperparameters have the valid `ranges`
    (submissions/lib/valid_ranges.py) and whose other hyperparameter checks are `check`.

    The transformation is rebuilt from the hparams and ctx inside each call, which costs nothing at
    run time: the harness traces update once per phase, inside its jitted step, where the numeric
    hparams are traced scalars (so `build` must not branch on them in Python) and the static ones
    (STATIC_HPARAMS, bools, ints, strings) Python values.

    check_hparams is valid_ranges.check of `ranges` (naming the phase when the workload has
    several), then `check`: the harness calls it with concrete values for every phase before
    anything runs. init runs on the host with concrete values too and calls check_hparams first,
    so a caller that goes straight to init (a notebook, an older harness) still gets the one-line
    spec.UserError rather than a failure inside `build`. update never checks (its hparams may be
    traced).

    next_phase(state, params, hparams, ctx) is the optional hook of harness/spec.py, called on the
    host at the start of each phase after the first with that phase's hparams and ctx. With
    ``hparams["restart_per_phase"]`` it returns a fresh ``init`` state (zero moments, step count 0,
    so the schedule restarts over the new phase: LAMB's re-warm-up, the BERT code starting phase 2
    from a checkpoint without optimizer slots); otherwise (or without that key) the state unchanged.
    """

    def check_hparams(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> None:
        valid_ranges.check(name, ranges, hparams, ctx.phase.name if len(ctx.phases) > 1 else None)
        check(hparams, ctx)

    def init(params: spec.Params, hparams: spec.Hparams, ctx: spec.SubmissionContext) -> Any:
        check_hparams(hparams, ctx)
        return build(hparams, ctx).init(params)

    def update(grads: spec.Params, state: Any, params: spec.Params, hparams: spec.Hparams,
               ctx: spec.SubmissionContext) -> tuple[spec.Params, Any]:
        return build(hparams, ctx).update(grads, state, params)

    def next_phase(state: Any, params: spec.Params, hparams: spec.Hparams,
                   ctx: spec.SubmissionContext) -> Any:
        if hparams.get("restart_per_phase", False):
            return init(params, hparams, ctx)
        return state

    return Protocol(init, update, next_phase, check_hparams)
