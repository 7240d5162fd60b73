r"""Learning-rate grafting M#D (Agarwal et al., "Learning rate grafting", Sec. 3, Algorithm 1).

Algorithm 1 (grafted meta-optimizer M#D)::

    init: optimizers M, D with their hyperparameters; a partition P of the parameters
    for each iteration t:
        receive (w_t, g_t)
        s_M <- M(w_t, g_t) - w_t,   s_D <- D(w_t, g_t) - w_t      (same input, own states)
        for each group rho in P:
            w_{t+1}^rho <- w_t^rho + ||s_M^rho|| / ||s_D^rho|| * s_D^rho
            (or, if s_D^rho = 0:  w_{t+1}^rho <- w_t^rho)
        output w_{t+1}

With a global learning-rate scalar c (``lr_scale``, 1 by default; Agarwal et al. App. A.1.1: "The
overall learning rate scalar was also tuned") every group's step is c ||s_M^rho|| / ||s_D^rho|| s_D^rho.

Norms are Euclidean over all coordinates of the group. Zero-D guard: a group whose D step is
exactly zero gets a zero update, as Algorithm 1 ("if w_D = w_t, let w_# = w_t"). It is the only
choice that keeps the direction D's (there is none to rescale), never produces inf/NaN, and keeps
A#A == A whenever A's step is zero. The recorded ratio of such a group is NaN ("undefined"), so
schedule discovery (medians) skips it rather than counting it as a 0 multiplier.

Partitions (``partition`` argument):

* ``"global"``: one group named ``all`` (global grafting: one schedule for the whole model);
* ``"layerwise"``: one group per parameter tensor, named by its path, e.g. ``Conv_0/kernel``;
* ``"param_type"``: one group per spec.ParamType present, named by its value, e.g. ``conv_weight``;
* a callable ``(path, param_type) -> group name``: any coarser grouping.

Group order (the order of ``GraftState.ratios``): groups sorted by name, for every partition.

State: ``GraftState(m, d, ratios)``: both children's states and, for diagnostics, the latest
per-group ratio ||s_M|| / ||s_D|| as a float32 vector of shape (n_groups,) (NaN before the first
step). The group names travel with the state as static pytree metadata, so
``diagnostics(state)`` can name them without the workload.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from harness import spec

PARTITIONS = ("global", "layerwise", "param_type")
GroupFn = Callable[[str, spec.ParamType | None], str]
Partition = str | GroupFn


@struct.dataclass
class GraftState:
    m: Any  # M's state
    d: Any  # D's state
    ratios: jax.Array  # float32 (n_groups,): latest ||s_M^rho|| / ||s_D^rho||, NaN if s_D^rho = 0
    groups: tuple[str, ...] = struct.field(pytree_node=False, default=())  # names, ratios' order


def path_name(path: tuple[Any, ...]) -> str:
    """``Conv_0/kernel`` for the tree path (DictKey('Conv_0'), DictKey('kernel'))."""
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def group_fn(partition: Partition) -> GroupFn:
    """The (path, param_type) -> group name function of a partition name or callable."""
    if callable(partition):
        return partition
    if partition == "global":
        return lambda path, ptype: "all"
    if partition == "layerwise":
        return lambda path, ptype: path
    if partition == "param_type":
        def by_type(path: str, ptype: spec.ParamType | None) -> str:
            if ptype is None:
                raise spec.UserError("partition 'param_type' needs the workload's param types")
            return ptype.value
        return by_type
    raise spec.UserError(f"unknown grafting partition {partition!r}; known partitions: "
                         f"{', '.join(PARTITIONS)} (or a callable in Python)")


def leaf_groups(tree: Any, partition: Partition, param_types: spec.ParamTypes | None = None
                ) -> tuple[tuple[str, ...], list[int]]:
    """(group names sorted, group index of each leaf of ``tree`` in jax.tree.leaves order).

    Static: depends on the tree's structure and the param types only, never on values.
    """
    fn = group_fn(partition)
    paths = [path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    if param_types is None:
        types: list[Any] = [None] * len(paths)
    else:
        types = jax.tree.leaves(param_types, is_leaf=lambda x: isinstance(x, spec.ParamType))
        if len(types) != len(paths):
            raise ValueError(f"param_types has {len(types)} leaves, the parameters {len(paths)}")
    names = [str(fn(path, ptype)) for path, ptype in zip(paths, types)]
    groups = tuple(sorted(set(names)))
    index = {g: i for i, g in enumerate(groups)}
    return groups, [index[n] for n in names]


def group_sq_norms(leaves: list[jax.Array], ids: list[int], n_groups: int, dtype: Any) -> jax.Array:
    """Squared Euclidean norm of each group (static segment sum over the leaves)."""
    sums: list[Any] = [jnp.zeros([], dtype) for _ in range(n_groups)]
    for leaf, g in zip(leaves, ids):
        sums[g] = sums[g] + jnp.sum(jnp.square(leaf.astype(dtype)))
    return jnp.stack(sums) if sums else jnp.zeros([0], dtype)


def graft(m: optax.GradientTransformation, d: optax.GradientTransformation,
          partition: Partition = "layerwise", param_types: spec.ParamTypes | None = None,
          lr_scale: float | jax.Array = 1.0) -> optax.GradientTransformation:
    r"""M#D of Algorithm 1 (see the module docstring): M's step norms with D's directions, per group.

    ``update(g, state, params)`` feeds the same (g, params) to M and D; each group rho of D's step is
    scaled by lr_scale * ||s_M^rho|| / ||s_D^rho||, or set to 0 when ||s_D^rho|| = 0. Norms are
    computed in the widest dtype of the steps (float64 under x64); ``ratios`` (without lr_scale:
    the implicit schedule M hands to D) are stored as float32. lr_scale may be traced; at 1.0 the
    updates are bit for bit those without it (1.0 * x = x in floating point).
    """

    def init_fn(params: optax.Params) -> GraftState:
        groups, _ = leaf_groups(params, partition, param_types)
        return GraftState(m.init(params), d.init(params),
                          jnp.full([len(groups)], jnp.nan, jnp.float32), groups)

    def update_fn(updates: optax.Updates, state: GraftState, params: optax.Params = None
                  ) -> tuple[optax.Updates, GraftState]:
        step_m, m_state = m.update(updates, state.m, params)
        step_d, d_state = d.update(updates, state.d, params)
        groups, ids = leaf_groups(step_d, partition, param_types)
        leaves_m, leaves_d = jax.tree.leaves(step_m), jax.tree.leaves(step_d)
        dtype = jnp.result_type(*leaves_d, *leaves_m) if leaves_d else jnp.float32
        norm_m = jnp.sqrt(group_sq_norms(leaves_m, ids, len(groups), dtype))
        norm_d = jnp.sqrt(group_sq_norms(leaves_d, ids, len(groups), dtype))
        ok = norm_d > 0
        scale = jnp.where(ok, norm_m / jnp.where(ok, norm_d, 1), 0)
        ratios = jnp.where(ok, scale, jnp.nan).astype(jnp.float32)
        step_scale = lr_scale * scale
        out = [(step_scale[g].astype(leaf.dtype) * leaf) for leaf, g in zip(leaves_d, ids)]
        grafted = jax.tree.unflatten(jax.tree.structure(step_d), out)
        return grafted, GraftState(m_state, d_state, ratios, groups)

    return optax.GradientTransformation(init_fn, update_fn)


def find_graft_states(state: Any) -> list[GraftState]:
    """The outermost GraftState nodes of an optimizer state (e.g. inside an optax.chain)."""
    is_graft = lambda x: isinstance(x, GraftState)  # noqa: E731
    return [x for x in jax.tree.leaves(state, is_leaf=is_graft) if is_graft(x)]


def diagnostics(state: Any) -> dict[str, jax.Array]:
    """``{"ratio/<group>": ||s_M|| / ||s_D||}`` of the (outermost) grafting in ``state``.

    Several sibling graftings (rare: a chain of two) are told apart as ``ratio<i>/<group>``.
    """
    found = find_graft_states(state)
    out: dict[str, jax.Array] = {}
    for i, g in enumerate(found):
        prefix = "ratio" if len(found) == 1 else f"ratio{i}"
        out.update({f"{prefix}/{name}": g.ratios[j] for j, name in enumerate(g.groups)})
    return out


def ratios_by_group(state: GraftState) -> Mapping[str, float]:
    """Host-side {group: ratio} of a GraftState (for tests and notebooks)."""
    values = jax.device_get(state.ratios)
    return {name: float(values[i]) for i, name in enumerate(state.groups)}
