"""Checks that a submission honours the protocol before anything is trained or recorded.

Abstract evaluation (jax.eval_shape) of init and update catches a wrong tree structure, shape or
dtype without running any computation.

Whatever the submission's code raises is a one-line UserError naming the call, sys.exit included
(SystemExit is no Exception: uncaught, it would end the harness with the submission's exit code and
no output); a refusal of the harness's audit guard (harness/audit.ContractViolation) propagates as
such, and so does an interrupt (KeyboardInterrupt, harness/interrupts.py: the user's, not the
submission's).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import jax

from harness.audit import ContractViolation, exit_error
from harness.errors import UserError
from harness.spec import Hparams, SubmissionContext
from harness.training import traced_dtype


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def _structure(tree: Any) -> Any:
    """The tree's PyTreeDef (typed Any: jax's stubs do not expose PyTreeDef's methods)."""
    return jax.tree.structure(tree)


def same_shapes(expected: Any, got: Any) -> bool:
    """Whether two trees have one structure and leaves of the same shapes and dtypes."""
    return _structure(expected) == _structure(got) and all(
        e.shape == g.shape and e.dtype == g.dtype for e, g in zip(jax.tree.leaves(expected), jax.tree.leaves(got)))


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
                     ctx: SubmissionContext, traced: Collection[str] = ()) -> None:
    """Raise UserError naming the problem if init/update fail or return trees of the wrong form.

    init runs on concrete hparams (as on the host); update with the `traced` hparams as abstract
    scalars, as in the compiled step (harness/spec.py), so that Python branching on them is found
    here, before anything runs.
    """
    try:
        state = jax.eval_shape(lambda p: init(p, hparams, ctx), params)
    except ContractViolation:
        raise
    except SystemExit as e:
        raise exit_error(name, "in init(params, hparams, ctx)", e) from None
    except Exception as e:  # user code: any failure is reported as one line
        raise UserError(f"submission {name}: init(params, hparams, ctx) raised {_first_line(e)}") from None
    static = {k: v for k, v in hparams.items() if k not in traced}
    abstract = {k: jax.ShapeDtypeStruct((), traced_dtype()) for k in traced}
    try:
        out = jax.eval_shape(lambda g, s, p, h: update(g, s, p, {**static, **h}, ctx), params, state,
                             params, abstract)
    except jax.errors.ConcretizationTypeError as e:
        raise UserError(f"submission {name}: update branches in Python on a traced hparam "
                        f"({_first_line(e)[:160]}); numeric hparams ({', '.join(sorted(traced))}) are "
                        "traced: use jnp operations on them, or name the hparam in STATIC_HPARAMS "
                        "(harness/spec.py)") from None
    except ContractViolation:
        raise
    except SystemExit as e:
        raise exit_error(name, "in update(grads, state, params, hparams, ctx)", e) from None
    except Exception as e:
        raise UserError(f"submission {name}: update(grads, state, params, hparams, ctx) raised "
                        f"{_first_line(e)}") from None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise UserError(f"submission {name}: update must return a pair (updates, new_state)")
    updates, new_state = out
    _compare("the updates returned by update", params, updates, name)
    _compare("the state returned by update", state, new_state, name)
