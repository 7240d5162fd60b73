r"""A grafted submission M#D built from two submissions (protocol functions, not optax objects).

Each child submission (init, update, next_phase, DEFAULT_HPARAMS) is wrapped as an optax
GradientTransformation for its own hyperparameters and ``ctx``, then grafted with
``grafting.graft`` (Algorithm 1, see submissions/lib/grafting.py)::

    s_M, s_D <- M.update(g, ...), D.update(g, ...)          (same gradient, own states)
    update^rho = ||s_M^rho|| / ||s_D^rho|| * s_D^rho         (0 where s_D^rho = 0)

Hyperparameters are namespaced: ``"M.<name>"`` goes to M, ``"D.<name>"`` to D, and ``partition``
(``global`` | ``layerwise`` | ``param_type``, default ``layerwise``) and ``lr_scale`` (the global
learning-rate scalar c of Agarwal et al. App. A.1.1, default 1.0: update^rho = c ||s_M^rho|| /
||s_D^rho|| s_D^rho) are the grafting's own. The defaults are each child's DEFAULT_HPARAMS under
its prefix, and the graft's (GRAFT_DEFAULTS). Nesting works: in (A#B)#C, A's
learning rate is ``M.M.learning_rate``. So are the static hyperparameters (each child's
STATIC_HPARAMS under its prefix; ``partition`` is a string, static anyway), the valid ranges
(each child's VALID_RANGES under its prefix, ``namespaced_ranges``) and the checks (each child's
check_hparams on its own hyperparameters, a value outside a child's valid range reported under
the graft's name and the prefixed key, e.g. ``D.momentum``; then the partition's name).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import optax

from harness import spec
from submissions.lib import grafting, protocol, valid_ranges

PREFIX_M, PREFIX_D, SEP = "M", "D", "."
DEFAULT_PARTITION = "layerwise"
#: The graft's own numeric hyperparameters (no prefix): the global learning-rate scalar, 1 = none.
GRAFT_DEFAULTS: dict[str, float] = {"lr_scale": 1.0}
#: Their valid ranges (submissions/lib/valid_ranges.py).
GRAFT_RANGES: dict[str, valid_ranges.Range] = {"lr_scale": valid_ranges.LEARNING_RATE}
#: Their dimension in the search space of an ad hoc M#D (harness/search_space.py's format), beside D's
#: namespaced dimensions: the same as the built-in grafts' search_space.json files.
GRAFT_SEARCH_SPACE: dict[str, dict[str, Any]] = {"lr_scale": {
    "min": 0.1, "max": 10.0, "scaling": "log",
    "note": "The graft's global learning-rate scalar c (Agarwal et al. App. A.1.1: 'The overall learning rate "
            "scalar was also tuned'): every group's step is c ||s_M|| / ||s_D|| s_D, M's hparams fixed. Two "
            "decades centred on c = 1 (M's own step sizes) in log scale."}}


@dataclasses.dataclass(frozen=True)
class Child:
    """One side of the grafting: a submission's protocol functions and defaults."""

    name: str
    defaults: Mapping[str, Any]
    init: protocol.Init
    update: protocol.Update
    next_phase: protocol.NextPhase | None = None
    static_hparams: frozenset[str] = frozenset()  # the child's STATIC_HPARAMS (unprefixed)
    check_hparams: protocol.Check | None = None  # the child's check_hparams, if it has one


@dataclasses.dataclass(frozen=True)
class Grafted:
    """The protocol functions of M#D (what a submission module exports)."""

    name: str
    defaults: dict[str, Any]
    init: protocol.Init
    update: protocol.Update
    next_phase: protocol.NextPhase
    diagnostics: Callable[[Any], dict[str, jax.Array]]
    children: tuple[str, str]  # the names of M and D
    static_hparams: frozenset[str]  # "M.<name>" / "D.<name>" for each child's STATIC_HPARAMS
    check_hparams: protocol.Check  # GRAFT_RANGES, each child's check on its own hparams, the partition


def child_from_module(module: Any, name: str) -> Child:
    """A Child from a submission module (DEFAULT_HPARAMS, init, update; optional next_phase,
    STATIC_HPARAMS, check_hparams)."""
    return Child(name, dict(module.DEFAULT_HPARAMS), module.init, module.update,
                 getattr(module, "next_phase", None),
                 frozenset(getattr(module, "STATIC_HPARAMS", frozenset())),
                 getattr(module, "check_hparams", None))


def namespaced(defaults_m: Mapping[str, Any], defaults_d: Mapping[str, Any],
               partition: str = DEFAULT_PARTITION) -> dict[str, Any]:
    """{"M.k": ..., "D.k": ..., "partition": ..., "lr_scale": 1.0} from the children's defaults."""
    out: dict[str, Any] = {f"{PREFIX_M}{SEP}{k}": v for k, v in defaults_m.items()}
    out.update({f"{PREFIX_D}{SEP}{k}": v for k, v in defaults_d.items()})
    out["partition"] = partition
    out.update(GRAFT_DEFAULTS)
    return out


def namespaced_static(static_m: frozenset[str], static_d: frozenset[str]) -> frozenset[str]:
    """{"M.k", ..., "D.k", ...} from the children's STATIC_HPARAMS."""
    return frozenset({f"{PREFIX_M}{SEP}{k}" for k in static_m} | {f"{PREFIX_D}{SEP}{k}" for k in static_d})


def namespaced_ranges(ranges_m: valid_ranges.Ranges, ranges_d: valid_ranges.Ranges
                      ) -> dict[str, valid_ranges.Range]:
    """{"M.k": range, ..., "D.k": range, ..., "lr_scale": range} from the children's VALID_RANGES
    (what the graft's check_hparams enforces through the children's own checks) and GRAFT_RANGES."""
    out = {f"{PREFIX_M}{SEP}{k}": v for k, v in ranges_m.items()}
    out.update({f"{PREFIX_D}{SEP}{k}": v for k, v in ranges_d.items()})
    out.update(GRAFT_RANGES)
    return out


def namespaced_search_space(space_d: Mapping[str, Any]) -> dict[str, Any]:
    """{"D.k": dimension, ..., "lr_scale": dimension}: D's search space under its prefix (Agarwal et al.
    Sec. 4 tune D with M fixed) and the graft's own scalar (GRAFT_SEARCH_SPACE)."""
    out: dict[str, Any] = {f"{PREFIX_D}{SEP}{k}": v for k, v in space_d.items()}
    out.update(GRAFT_SEARCH_SPACE)
    return out


def split(hparams: spec.Hparams) -> tuple[dict[str, Any], dict[str, Any]]:
    """(M's hparams, D's hparams) with the prefixes removed."""
    def part(prefix: str) -> dict[str, Any]:
        p = prefix + SEP
        return {k[len(p):]: v for k, v in hparams.items() if k.startswith(p)}
    return part(PREFIX_M), part(PREFIX_D)


def as_optax(child: Child, hparams: spec.Hparams, ctx: spec.SubmissionContext
             ) -> optax.GradientTransformation:
    """The child's submission functions, bound to its hparams and ctx, as an optax transformation."""
    return optax.GradientTransformation(
        lambda params: child.init(params, hparams, ctx),
        lambda grads, state, params=None: child.update(grads, state, params, hparams, ctx))


def combine(m: Child, d: Child) -> Grafted:
    """M#D as submission protocol functions, hyperparameters namespaced (module docstring)."""

    def build(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> optax.GradientTransformation:
        hm, hd = split(hparams)
        return grafting.graft(as_optax(m, hm, ctx), as_optax(d, hd, ctx), hparams["partition"],
                              ctx.param_types, hparams["lr_scale"])

    name = f"{m.name}#{d.name}"

    def check_children(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> None:
        """Each child's check_hparams on its own hparams (a value outside a child's valid range
        named as the graft's, with the prefix), then the partition's name (UserError)."""
        hm, hd = split(hparams)
        for prefix, child, h in ((PREFIX_M, m, hm), (PREFIX_D, d, hd)):
            if child.check_hparams is None:
                continue
            try:
                child.check_hparams(h, ctx)
            except valid_ranges.OutOfRange as e:
                raise valid_ranges.OutOfRange(e.violation.within(name, prefix + SEP)) from None
        grafting.group_fn(hparams["partition"])

    # The children's ranges are checked by check_hparams through them; GRAFT_RANGES here.
    init, update, _, check_hparams = protocol.from_optax(build, check_children, name, GRAFT_RANGES)

    def next_phase(state: grafting.GraftState, params: spec.Params, hparams: spec.Hparams,
                   ctx: spec.SubmissionContext) -> grafting.GraftState:
        """Each child's own next_phase on its own state (unchanged if it has none)."""
        hm, hd = split(hparams)
        sm = m.next_phase(state.m, params, hm, ctx) if m.next_phase else state.m
        sd = d.next_phase(state.d, params, hd, ctx) if d.next_phase else state.d
        return dataclasses.replace(state, m=sm, d=sd)

    return Grafted(name, namespaced(m.defaults, d.defaults), init, update,
                   next_phase, grafting.diagnostics, (m.name, d.name),
                   namespaced_static(m.static_hparams, d.static_hparams), check_hparams)
