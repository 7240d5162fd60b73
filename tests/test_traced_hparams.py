"""Numeric hyperparameters traced in the compiled step (harness/spec.py, "Static and traced
hyperparameters"): every built-in submission's update takes them as traced JAX scalars and gives the
parameters it gives with Python constants; check_hparams holds the range checks; the SGD family's
state does not depend on the (traced) momentum."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _submission_helpers import (
    LAYOUT,
    context,
    flatten,
    load_submission,
    nest,
    random_grads,
    random_params,
    x64_mode,
)

from harness import spec
from harness.submission_loader import builtin_names
from submissions.lib import graft_protocol, schedules

BUDGET = 10  # the schedule's span: 5 steps cover the warmup (1-3 steps here) and the decay
STEPS = 5
RTOL = 1e-5
SGD_FAMILY = ("sgd", "momentum", "nesterov", "sgd_corrected")

#: Per submission, the points besides DEFAULT_HPARAMS: several numeric hparams changed, the
#: warmup_fraction among them, static ones left as they are (so one compiled step serves all).
#: The SGD family is run at momentum 0.0 and 0.9 (and its default).
_SGD_OTHER = {"learning_rate": 0.3, "weight_decay": 5e-4, "warmup_fraction": 0.3, "p_decay": 1.0,
              "final_learning_rate": 0.01, "p_warmup": 2.0}
OTHER_POINTS: dict[str, list[dict[str, Any]]] = {
    **{name: [{**_SGD_OTHER, "momentum": 0.0}, {**_SGD_OTHER, "momentum": 0.9}] for name in SGD_FAMILY},
    "adagrad": [{"learning_rate": 0.05, "initial_accumulator_value": 0.0, "eps": 1e-3,
                 "weight_decay": 1e-3, "warmup_fraction": 0.3, "final_learning_rate": 0.01}],
    "adamw": [{"learning_rate": 0.01, "b1": 0.8, "b2": 0.98, "eps": 1e-6, "weight_decay": 0.5,
               "warmup_fraction": 0.3, "final_learning_rate": 1e-3}],
    "lamb": [{"learning_rate": 0.05, "b1": 0.95, "b2": 0.99, "eps": 1e-8, "weight_decay": 0.1,
              "warmup_fraction": 0.3, "final_learning_rate": 1e-3}],
    "bert_adamw": [{"learning_rate": 0.01, "b1": 0.5, "b2": 0.9, "weight_decay": 0.1,
                    "warmup_fraction": 0.3, "p_decay": 2.0, "final_learning_rate": 1e-4}],
    "lars": [{"learning_rate": 5.0, "momentum": 0.95, "weight_decay": 1e-3, "trust_coefficient": 0.01,
              "eps": 1e-6, "warmup_fraction": 0.3, "p_warmup": 2.0, "p_decay": 1.0,
              "init_learning_rate": 0.1}],
    "adam_graft_sgd": [{"M.learning_rate": 0.01, "M.b1": 0.8, "M.warmup_fraction": 0.3,
                        "D.momentum": 0.0, "D.weight_decay": 1e-3, "D.warmup_fraction": 0.3}],
    "lamb_graft_sgd": [{"M.learning_rate": 0.05, "M.weight_decay": 0.1, "M.warmup_fraction": 0.3,
                        "D.momentum": 0.0, "D.weight_decay": 1e-3, "D.warmup_fraction": 0.3}],
    "sgd_graft_adagrad": [{"M.learning_rate": 1.0, "M.momentum": 0.0, "M.warmup_fraction": 0.3,
                           "D.eps": 1e-3, "D.initial_accumulator_value": 0.0, "D.weight_decay": 1e-3,
                           "D.warmup_fraction": 0.3}],
}


@pytest.fixture(autouse=True)
def float32() -> Iterator[None]:
    with x64_mode(False):
        yield


@pytest.fixture
def corrections_file(tmp_path: Any) -> str:
    """A corrections file for the test LAYOUT (layerwise groups), as discover-schedule writes it."""
    path = os.path.join(tmp_path, "corrections.json")
    multipliers = {k: 0.5 + 0.25 * i for i, k in enumerate(sorted(LAYOUT))}
    with open(path, "w") as f:
        json.dump({"multipliers": multipliers, "partition": "layerwise", "provenance": {}}, f)
    return path


def is_traced(name: str, defaults: Mapping[str, Any], static_names: frozenset[str]) -> bool:
    """The harness's rule: a hyperparameter is traced when its DEFAULT_HPARAMS value is a float
    (not a bool) and its name is not in the submission's STATIC_HPARAMS; everything else is static."""
    default = defaults[name]
    return isinstance(default, float) and not isinstance(default, bool) and name not in static_names


def split_static(hparams: Mapping[str, Any], defaults: Mapping[str, Any], static_names: frozenset[str]
                 ) -> tuple[dict[str, Any], dict[str, jax.Array]]:
    """(static Python values, traced float32 scalars) of `hparams` under the harness's rule."""
    static = {k: v for k, v in hparams.items() if not is_traced(k, defaults, static_names)}
    traced = {k: jnp.asarray(v, jnp.float32) for k, v in hparams.items()
              if is_traced(k, defaults, static_names)}
    return static, traced


def points(name: str, module: ModuleType, corrections: str) -> list[dict[str, Any]]:
    base = dict(module.DEFAULT_HPARAMS)
    if name == "sgd_corrected":
        base["corrections"] = corrections
    return [base] + [{**base, **other} for other in OTHER_POINTS[name]]


def as_f32(flat: dict[str, np.ndarray]) -> Any:
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), nest(flat))


def max_rel_diff(a: Any, b: Any) -> float:
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)) / np.abs(np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_every_builtin_is_covered() -> None:
    assert set(OTHER_POINTS) == set(builtin_names()) and len(OTHER_POINTS) == 12


@pytest.mark.parametrize("name", sorted(OTHER_POINTS))
def test_traced_update_equals_constant_update(name: str, corrections_file: str) -> None:
    """5 steps of jax.jit(update) with the numeric hparams as traced float32 arguments (one
    compiled step for every point) against 5 steps with every hparam a Python constant: the
    parameters after each step agree to rtol 1e-5."""
    module, ctx = load_submission(name), context(BUDGET)
    defaults, static_names = module.DEFAULT_HPARAMS, module.STATIC_HPARAMS
    assert static_names <= set(defaults)
    hps = points(name, module, corrections_file)
    static, _ = split_static(hps[0], defaults, static_names)  # the same at every point
    traced_step = jax.jit(lambda g, s, p, traced: module.update(g, s, p, {**static, **traced}, ctx))
    worst = 0.0
    for hp in hps:
        static_here, traced = split_static(hp, defaults, static_names)
        assert static_here == static, "the points differ in numeric hparams only"
        module.check_hparams(hp, ctx)
        const_step = jax.jit(lambda g, s, p, hp=hp: module.update(g, s, p, hp, ctx))
        p_t = p_c = as_f32(random_params(0))
        s_t = s_c = module.init(p_c, hp, ctx)
        for t, g in enumerate(random_grads(1, STEPS)):
            g = as_f32(g)
            u_t, s_t = traced_step(g, s_t, p_t, traced)
            u_c, s_c = const_step(g, s_c, p_c)
            p_t, p_c = optax.apply_updates(p_t, u_t), optax.apply_updates(p_c, u_c)
            assert {x.dtype for x in jax.tree.leaves(p_t)} == {jnp.dtype(jnp.float32)}
            for k, v in flatten(p_c).items():
                np.testing.assert_allclose(flatten(p_t)[k], v, rtol=RTOL, atol=0,
                                           err_msg=f"{name} {hp} step {t} {k}")
            worst = max(worst, max_rel_diff(p_t, p_c))
    assert traced_step._cache_size() == 1  # one compilation for every point
    print(f"\n{name}: max relative difference traced vs constant {worst:.3g}")


# --- the SGD family: momentum is traced, so the buffer is always there -------------------------


@pytest.mark.parametrize("name", SGD_FAMILY + ("adam_graft_sgd", "lamb_graft_sgd", "sgd_graft_adagrad"))
def test_state_structure_does_not_depend_on_momentum(name: str, corrections_file: str) -> None:
    module, ctx = load_submission(name), context(BUDGET)
    key = {"adam_graft_sgd": "D.momentum", "lamb_graft_sgd": "D.momentum",
           "sgd_graft_adagrad": "M.momentum"}.get(name, "momentum")
    hp = {**module.DEFAULT_HPARAMS, "corrections": corrections_file} if name == "sgd_corrected" \
        else dict(module.DEFAULT_HPARAMS)
    params = as_f32(random_params(0))
    zero, nine = (module.init(params, {**hp, key: mu}, ctx) for mu in (0.0, 0.9))
    assert jax.tree.structure(zero) == jax.tree.structure(nine)
    assert [(x.shape, x.dtype) for x in jax.tree.leaves(zero)] == \
        [(x.shape, x.dtype) for x in jax.tree.leaves(nine)]


def plain_sgd(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> optax.GradientTransformation:
    """The sgd submission's optimizer at momentum 0 before the buffer was kept: no momentum trace."""
    return optax.chain(
        optax.add_decayed_weights(hparams["weight_decay"], spec.weight_mask(ctx.param_types)),
        optax.sgd(schedules.from_hparams(hparams, ctx), None))


@pytest.mark.parametrize("traced", [False, True])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 5e-4])
def test_sgd_momentum_zero_is_bit_identical_to_plain_sgd(traced: bool, nesterov: bool,
                                                         weight_decay: float) -> None:
    """With mu = 0 the buffer holds v_t = g_t + 0 * v_{t-1} = g_t, and the parameters after each
    step are exactly those of plain SGD without a buffer (constant or traced hparams alike)."""
    module, ctx = load_submission("sgd"), context(BUDGET)
    hp = {**module.DEFAULT_HPARAMS, "momentum": 0.0, "nesterov": nesterov, "weight_decay": weight_decay}
    static, numeric = split_static(hp, module.DEFAULT_HPARAMS, module.STATIC_HPARAMS)
    ours = jax.jit(lambda g, s, p, h: module.update(g, s, p, {**static, **h}, ctx)) if traced else \
        jax.jit(lambda g, s, p, h: module.update(g, s, p, hp, ctx))
    theirs = jax.jit(lambda g, s, p, h: plain_sgd({**static, **h}, ctx).update(g, s, p)) if traced else \
        jax.jit(lambda g, s, p, h: plain_sgd(hp, ctx).update(g, s, p))
    p_ours = p_theirs = as_f32(random_params(0))
    s_ours, s_theirs = module.init(p_ours, hp, ctx), plain_sgd(hp, ctx).init(p_theirs)
    for g in random_grads(1, STEPS):
        g = as_f32(g)
        u_ours, s_ours = ours(g, s_ours, p_ours, numeric)
        u_theirs, s_theirs = theirs(g, s_theirs, p_theirs, numeric)
        p_ours, p_theirs = optax.apply_updates(p_ours, u_ours), optax.apply_updates(p_theirs, u_theirs)
        for a, b in zip(jax.tree.leaves(p_ours), jax.tree.leaves(p_theirs)):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


# --- check_hparams: the range checks, on the host, one-line UserErrors -------------------------

SCHEDULE_ERRORS = [
    ({"schedule": "step"}, "unknown schedule 'step'"),
    ({"warmup_steps": -2}, "warmup_steps = -2 is outside [-1, inf)"),  # VALID_RANGES
    ({"warmup_fraction": 1.5}, "warmup_fraction = 1.5 is outside [0, 1]"),
    ({"schedule": "cosine", "warmup_fraction": 1.0}, "warmup_steps must be in [0, "),
    ({"warmup_steps": BUDGET + 1}, "warmup_steps must be in [0, "),
]
OWN_ERRORS: dict[str, list[tuple[dict[str, Any], str]]] = {
    **{name: [({"momentum": -0.1}, f"submission {name}: hparam momentum = -0.1 is outside [0, 1)"),
              ({"momentum": 1.0}, f"submission {name}: hparam momentum = 1.0 is outside [0, 1)")]
       for name in ("sgd", "momentum", "nesterov", "sgd_corrected")},
    "adagrad": [], "lars": [],
    "adamw": [({"grad_clip_norm": -1.0}, "hparam grad_clip_norm = -1.0 is outside [0, inf)")],
    "lamb": [({"grad_clip_norm": -1e-3}, "hparam grad_clip_norm = -0.001 is outside [0, inf)")],
    "bert_adamw": [({"grad_clip_norm": 0.0}, "grad_clip_norm = 0.0 is outside (0, inf) (the BERT code always"),
                   ({"grad_clip_norm": -1.0}, "grad_clip_norm = -1.0 is outside (0, inf)")],
    "adam_graft_sgd": [({"D.momentum": 1.0}, "submission adamw#sgd: hparam D.momentum = 1.0 is outside [0, 1)"),
                       ({"M.grad_clip_norm": -1.0}, "hparam M.grad_clip_norm = -1.0 is outside [0, inf)")],
    "lamb_graft_sgd": [({"D.momentum": -0.5}, "submission lamb#sgd: hparam D.momentum = -0.5 is outside [0, 1)"),
                       ({"M.grad_clip_norm": -1.0}, "hparam M.grad_clip_norm = -1.0 is outside [0, inf)")],
    "sgd_graft_adagrad": [({"M.momentum": 1.5}, "hparam M.momentum = 1.5 is outside [0, 1)")],
}
GRAFTED = ("adam_graft_sgd", "lamb_graft_sgd", "sgd_graft_adagrad")


def bad_cases() -> list[tuple[str, dict[str, Any], str]]:
    cases = []
    for name, own in sorted(OWN_ERRORS.items()):
        prefixes = ("M.", "D.") if name in GRAFTED else ("",)
        cases += [(name, bad, message) for bad, message in own]
        cases += [(name, {p + k: v for k, v in bad.items()}, message)
                  for p in prefixes for bad, message in SCHEDULE_ERRORS]
        if name in GRAFTED:
            cases.append((name, {"partition": "rows"}, "unknown grafting partition 'rows'"))
    return cases


def assert_user_error(module: ModuleType, hp: dict[str, Any], message: str) -> None:
    with pytest.raises(spec.UserError) as err:
        module.check_hparams(hp, context(BUDGET))
    text = str(err.value)
    assert "\n" not in text and message in text, text


@pytest.mark.parametrize("name, bad, message", bad_cases())
def test_check_hparams_raises_for_bad_values(name: str, bad: dict, message: str,
                                             corrections_file: str) -> None:
    module = load_submission(name)
    hp = {**module.DEFAULT_HPARAMS, **({"corrections": corrections_file} if name == "sgd_corrected" else {})}
    module.check_hparams(hp, context(BUDGET))  # the defaults pass
    assert_user_error(module, {**hp, **bad}, message)


def test_check_hparams_reads_the_corrections_file(tmp_path: Any, corrections_file: str) -> None:
    module = load_submission("sgd_corrected")
    hp = {**module.DEFAULT_HPARAMS, "corrections": corrections_file}
    module.check_hparams(hp, context(BUDGET))

    def write(name: str, text: str) -> str:
        path = os.path.join(tmp_path, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    full = {k: 1.0 for k in LAYOUT}
    for corrections, message in [
        ("", "hparam corrections must be the path of a JSON file"),
        (os.path.join(tmp_path, "missing.json"), "cannot read corrections file"),
        (write("bad.json", "{"), "is not JSON"),
        (write("nan.json", '{"multipliers": {"conv/kernel": "x"}}'), "must hold"),
        (write("global.json", json.dumps({"multipliers": {"all": 1.0}, "partition": "global"})),
         "was discovered with partition 'global' but hparam partition is 'layerwise'"),
        (write("few.json", json.dumps({"multipliers": {"conv/kernel": 1.0}})),
         "no multiplier for group(s) bn/bias"),
        (write("many.json", json.dumps({"multipliers": {**full, "head/kernel": 2.0}})),
         "unknown group(s) head/kernel"),
    ]:
        assert_user_error(module, {**hp, "corrections": corrections}, message)
    unrecorded = write("plain.json", json.dumps({"multipliers": full}))
    module.check_hparams({**hp, "corrections": unrecorded}, context(BUDGET))
    assert_user_error(module, {**hp, "corrections": unrecorded, "partition": "rows"},
                      "unknown grafting partition 'rows'")


@pytest.mark.parametrize("name", sorted(OTHER_POINTS))
def test_check_hparams_passes_for_defaults_and_other_points(name: str, corrections_file: str) -> None:
    """On the host, and inside a trace too: the harness checks init on shapes (jax.eval_shape), and
    init checks first (the warmup is computed with jnp, made concrete even there)."""
    module, ctx = load_submission(name), context(BUDGET)
    params = as_f32(random_params(0))
    for hp in points(name, module, corrections_file):
        module.check_hparams(hp, ctx)
        jax.eval_shape(lambda p, hp=hp: module.init(p, hp, ctx), params)
    prefix = "D." if name in GRAFTED else ""
    bad = {**hp, prefix + "schedule": "cosine", prefix + "warmup_fraction": 1.0}  # no step left to decay
    with pytest.raises(spec.UserError, match="warmup_steps must be in"):
        jax.eval_shape(lambda p: module.init(p, bad, ctx), params)


# --- grafting: the children's static sets and checks, namespaced ----------------------------------


def test_grafted_static_hparams_and_check_are_the_childrens() -> None:
    assert load_submission("adam_graft_sgd").STATIC_HPARAMS == frozenset({"M.grad_clip_norm"})
    assert load_submission("lamb_graft_sgd").STATIC_HPARAMS == frozenset({"M.grad_clip_norm"})
    assert load_submission("sgd_graft_adagrad").STATIC_HPARAMS == frozenset()
    adamw, sgd = load_submission("adamw"), load_submission("sgd")
    child = graft_protocol.child_from_module(adamw, "adamw")
    assert child.static_hparams == adamw.STATIC_HPARAMS and child.check_hparams is adamw.check_hparams
    nested = graft_protocol.combine(
        graft_protocol.Child("adamw#sgd", *_as_child_fields(graft_protocol.combine(
            child, graft_protocol.child_from_module(sgd, "sgd")))),
        graft_protocol.child_from_module(adamw, "adamw"))
    assert nested.static_hparams == frozenset({"M.M.grad_clip_norm", "D.grad_clip_norm"})
    hp = dict(nested.defaults)
    nested.check_hparams(hp, context(BUDGET))
    with pytest.raises(spec.UserError, match=r"^submission adamw#sgd#adamw: hparam M\.D\.momentum = 1\.0 is "
                                             r"outside \[0, 1\)"):
        nested.check_hparams({**hp, "M.D.momentum": 1.0}, context(BUDGET))
    with pytest.raises(spec.UserError, match="unknown grafting partition 'rows'"):
        nested.check_hparams({**hp, "M.partition": "rows"}, context(BUDGET))
    # a Child built without the new fields (as an older loader does) has no static names, no check
    bare = graft_protocol.Child("sgd", sgd.DEFAULT_HPARAMS, sgd.init, sgd.update, sgd.next_phase)
    assert bare.static_hparams == frozenset() and bare.check_hparams is None


def _as_child_fields(g: graft_protocol.Grafted) -> tuple[Any, ...]:
    """A Grafted's fields in Child's order after the name (a graft used as a child, as the loader does)."""
    return g.defaults, g.init, g.update, g.next_phase, g.static_hparams, g.check_hparams
