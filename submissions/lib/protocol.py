"""Turn an optax transformation built from (hparams, ctx) into the submission protocol's functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optax

from harness import spec

Build = Callable[[spec.Hparams, spec.SubmissionContext], optax.GradientTransformation]
Init = Callable[[spec.Params, spec.Hparams, spec.SubmissionContext], Any]
Update = Callable[[spec.Params, Any, spec.Params, spec.Hparams, spec.SubmissionContext],
                  tuple[spec.Params, Any]]


def from_optax(build: Build) -> tuple[Init, Update]:
    """(init, update) for a submission whose optimizer is the optax transformation `build` returns.

    The transformation is rebuilt from the (static) hparams and ctx inside each call, which costs
    nothing at run time: the harness traces update once, inside its jitted step.
    """

    def init(params: spec.Params, hparams: spec.Hparams, ctx: spec.SubmissionContext) -> Any:
        return build(hparams, ctx).init(params)

    def update(grads: spec.Params, state: Any, params: spec.Params, hparams: spec.Hparams,
               ctx: spec.SubmissionContext) -> tuple[spec.Params, Any]:
        return build(hparams, ctx).update(grads, state, params)

    return init, update
