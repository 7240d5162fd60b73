"""Checks that a submission honours the protocol before anything is trained or recorded.

Abstract evaluation (jax.eval_shape) of init and update catches a wrong tree structure, shape or
dtype without running any computation.
"""

from __future__ import annotations

from typing import Any

import jax

from harness.errors import UserError
from harness.spec import Hparams, SubmissionContext


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def _structure(tree: Any) -> Any:
    """The tree's PyTreeDef (typed Any: jax's stubs do not expose PyTreeDef's methods)."""
    return jax.tree.structure(tree)


def _compare(what: str, expected: Any, got: Any, name: str) -> None:
    if _structure(expected) != _structure(got):
        raise UserError(f"submission {name}: {what} has a tree structure different from the "
                        f"expected one ({_structure(got).num_leaves} leaves vs "
                        f"{_structure(expected).num_leaves}); return a tree shaped like params")
    for (path, e), g in zip(jax.tree_util.tree_flatten_with_path(expected)[0], jax.tree.leaves(got)):
        if e.shape != g.shape or e.dtype != g.dtype:
            raise UserError(f"submission {name}: {what} at {jax.tree_util.keystr(path)} has "
                            f"shape {g.shape} dtype {g.dtype}, expected shape {e.shape} dtype {e.dtype}")


def check_submission(name: str, init: Any, update: Any, params: Any, hparams: Hparams,
                     ctx: SubmissionContext) -> None:
    """Raise UserError naming the problem if init/update fail or return trees of the wrong form."""
    try:
        state = jax.eval_shape(lambda p: init(p, hparams, ctx), params)
    except Exception as e:  # user code: any failure is reported as one line
        raise UserError(f"submission {name}: init(params, hparams, ctx) raised {_first_line(e)}") from None
    try:
        out = jax.eval_shape(lambda g, s, p: update(g, s, p, hparams, ctx), params, state, params)
    except Exception as e:
        raise UserError(f"submission {name}: update(grads, state, params, hparams, ctx) raised "
                        f"{_first_line(e)}") from None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise UserError(f"submission {name}: update must return a pair (updates, new_state)")
    updates, new_state = out
    _compare("the updates returned by update", params, updates, name)
    _compare("the state returned by update", state, new_state, name)
