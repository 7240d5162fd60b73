r"""Fixed per-group learning-rate multipliers: the schedule discovered by grafting (Agarwal et al. Sec. 5).

A corrections file (written by ``python -m harness discover-schedule``) is JSON::

    {"multipliers": {"<group>": c_rho, ...},
     "partition": "layerwise" | "global" | "param_type",
     "provenance": {"run_id": ..., "workload": ..., "submission": ..., "first_steps": N, ...}}

where c_rho = median_{t <= N} ||s_M^rho_t|| / ||s_D^rho_t|| of a grafted run M#D. Applied to D
without running M::

    w^rho <- w^rho + c_rho * s_D^rho          (s_D: D's step, c_rho held constant in training)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import jax
import optax

from harness import spec
from submissions.lib import grafting


def load(path: str) -> tuple[dict[str, float], str | None]:
    """(multipliers, partition recorded in the file or None); spec.UserError (one line) if bad."""
    if not path:
        raise spec.UserError("hparam corrections must be the path of a JSON file written by "
                             "`python -m harness discover-schedule --run=ID --out=FILE.json`")
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise spec.UserError(f"cannot read corrections file {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise spec.UserError(f"corrections file {path} is not JSON: {e}") from None
    mult = data.get("multipliers") if isinstance(data, Mapping) else None
    if not isinstance(mult, Mapping) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in mult.values()):
        raise spec.UserError(f"corrections file {path} must hold {{\"multipliers\": {{group: finite "
                             "number}}}}, as written by `python -m harness discover-schedule`")
    return {str(k): float(v) for k, v in mult.items()}, data.get("partition")


def _check_groups(multipliers: Mapping[str, float], groups: tuple[str, ...],
                  partition: grafting.Partition, source: str) -> None:
    missing = [g for g in groups if g not in multipliers]
    unknown = sorted(set(multipliers) - set(groups))
    if missing or unknown:
        what = (f"no multiplier for group(s) {', '.join(missing)}" if missing
                else f"unknown group(s) {', '.join(unknown)}")
        raise spec.UserError(f"{source}: {what}; the model's groups under partition "
                             f"{partition!r} are {', '.join(groups)}")


def check_groups(multipliers: Mapping[str, float], partition: grafting.Partition,
                 param_types: spec.ParamTypes, source: str = "corrections") -> None:
    """spec.UserError (one line) unless `multipliers` names exactly the groups of the model whose
    parameters have the declared `param_types` (a tree with the params' structure), under
    `partition` (also an unknown partition name). On the host, before anything is built."""
    groups, _ = grafting.leaf_groups(param_types, partition, param_types)
    _check_groups(multipliers, groups, partition, source)


def scale_by_group(multipliers: Mapping[str, float], partition: grafting.Partition,
                   param_types: spec.ParamTypes | None, source: str = "corrections"
                   ) -> optax.GradientTransformation:
    """Stateless: multiply every leaf of group rho by multipliers[rho] (groups as in grafting).

    spec.UserError when a group of the model has no multiplier or the file names a group the model
    does not have (check_groups makes the same check earlier, from the param types alone).
    """

    def update_fn(updates: optax.Updates, state: optax.EmptyState, params: optax.Params = None
                  ) -> tuple[optax.Updates, optax.EmptyState]:
        del params
        groups, ids = grafting.leaf_groups(updates, partition, param_types)
        _check_groups(multipliers, groups, partition, source)
        leaves = jax.tree.leaves(updates)
        out = [leaf * jax.numpy.asarray(multipliers[groups[g]], leaf.dtype) for leaf, g in zip(leaves, ids)]
        return jax.tree.unflatten(jax.tree.structure(updates), out), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)
