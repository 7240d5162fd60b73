"""Valid ranges of hyperparameters (submissions/lib/valid_ranges.py): every built-in declares one
for each numeric hparam; its defaults, its named configs and its search spaces (search_space.json,
search_spaces/<workload>.json, whose study points pass check_hparams on the workload) lie inside; a value
just outside a range is a one-line UserError of check_hparams (and of init) naming the submission,
the hparam, the value and the range, a value at a closed end passes; grafts report the prefixed key."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import pytest
from _submission_helpers import (
    LAYOUT,
    REPO,
    context,
    load_submission,
    nest,
    param_types,
    random_params,
    workload_abstract,
)

from harness import configs, plan, spec
from harness import submission_loader as loader
from harness.hparams import validate_phase_hparams
from submissions.lib import valid_ranges
from submissions.lib.valid_ranges import OutOfRange, Range

NAMES = loader.builtin_names()
BUDGET = 100


def is_numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def message_name(name: str, module: Any) -> str:
    """The name a built-in's range errors carry: its own, or M#D for a grafted one (built from
    its children, e.g. adam_graft_sgd reports as adamw#sgd)."""
    children = getattr(module, "GRAFT_CHILDREN", None)
    return "#".join(children) if children else name


@pytest.fixture
def corrections_file(tmp_path: Any) -> str:
    """A corrections file for the test LAYOUT (layerwise groups), for sgd_corrected's check."""
    path = os.path.join(tmp_path, "corrections.json")
    with open(path, "w") as f:
        json.dump({"multipliers": {k: 1.0 for k in LAYOUT}, "partition": "layerwise"}, f)
    return path


def defaults(name: str, module: Any, corrections: str) -> dict[str, Any]:
    """DEFAULT_HPARAMS, with a readable corrections file for sgd_corrected (its default is "")."""
    return {**module.DEFAULT_HPARAMS, **({"corrections": corrections} if name == "sgd_corrected" else {})}


# --- the Range type and the check ------------------------------------------------------------------


def test_range_membership_and_notation() -> None:
    r = valid_ranges.half_open(0.0, 1.0)
    assert 0.0 in r and 0.5 in r and 1.0 not in r and -1e-300 not in r and math.nan not in r
    assert str(r) == "[0, 1)"
    assert str(valid_ranges.above(0.0)) == "(0, inf)" and 0.0 not in valid_ranges.above(0.0)
    assert str(valid_ranges.at_least(-1)) == "[-1, inf)" and -1 in valid_ranges.at_least(-1)
    assert str(valid_ranges.closed(0.0, 1.0)) == "[0, 1]" and 1.0 in valid_ranges.closed(0.0, 1.0)
    assert math.inf not in valid_ranges.at_least(0.0)
    with pytest.raises(ValueError, match="empty range"):
        valid_ranges.closed(1.0, 0.0)
    with pytest.raises(ValueError, match="infinite end"):
        Range(0.0, math.inf, False, False)


def test_check_names_the_first_bad_value_and_ignores_what_is_not_given() -> None:
    ranges = {"momentum": valid_ranges.DECAY, "eps": valid_ranges.DIVISOR_EPS}
    valid_ranges.check("toy", ranges, {"momentum": 0.9})  # eps not given: not looked at
    valid_ranges.check("toy", ranges, {"momentum": 0.0, "eps": 1e-30, "other": -5.0})
    with pytest.raises(OutOfRange) as err:
        valid_ranges.check("toy", ranges, {"momentum": jnp.float32(7.0), "eps": 0.0}, phase="seq512")
    assert str(err.value) == ("submission toy: hparam momentum = 7.0 in phase seq512 is outside [0, 1) "
                              f"({valid_ranges.DECAY.why}); pass a value in [0, 1)")
    assert isinstance(err.value, spec.UserError)
    # a graft renames it; the error survives pickling (as it would crossing processes)
    renamed = OutOfRange(err.value.violation.within("a#toy", "D."))
    assert str(renamed).startswith("submission a#toy: hparam D.momentum = 7.0 in phase seq512 is outside")
    assert str(pickle.loads(pickle.dumps(renamed))) == str(renamed)


# --- every built-in declares its ranges; defaults, configs and search spaces lie inside ----------


@pytest.mark.parametrize("name", NAMES)
def test_every_numeric_hparam_has_a_valid_range(name: str) -> None:
    module = load_submission(name)
    hparams = module.DEFAULT_HPARAMS
    numeric = {k for k, v in hparams.items() if is_numeric(v)}
    assert set(module.VALID_RANGES) == numeric, (name, numeric ^ set(module.VALID_RANGES))
    assert all(isinstance(r, Range) for r in module.VALID_RANGES.values())


@pytest.mark.parametrize("name", NAMES)
def test_defaults_are_valid(name: str, corrections_file: str) -> None:
    module = load_submission(name)
    hp = defaults(name, module, corrections_file)
    valid_ranges.check(name, module.VALID_RANGES, hp)
    module.check_hparams(hp, context(BUDGET))


def named_configs() -> Iterator[tuple[str, str]]:
    """(built-in, config name) for every config a built-in accepts: its own, and a graft's
    children's (applied as M./D.)."""
    for name in NAMES:
        for config in configs.known_names(loader.load(name)):
            yield name, config


@pytest.mark.parametrize("name, config", list(named_configs()))
def test_named_configs_are_valid_in_every_phase(name: str, config: str) -> None:
    """Each phase's hparams of the config as the harness reads them (harness/configs.py, merged
    over the defaults), checked by check_hparams with that phase's context."""
    import workloads

    sub = loader.load(name)
    named = configs.load_config(sub, config)
    phases = tuple(workloads.get_workload(named.workload, named.knobs).phases)
    per_phase, _ = plan.phase_hparams(named.hparams, sub, phases)  # as the harness gives them
    types = workload_abstract(named.workload, named.knobs)[1]  # its model's layers
    ctx = spec.SubmissionContext(named.workload, types, phases)
    assert sub.check_hparams is not None
    for k, hp in enumerate(per_phase):
        sub.check_hparams(hp, dataclasses.replace(ctx, phase_index=k))


def search_space_files() -> Iterator[tuple[str, str]]:
    """(built-in, path relative to the repository) of every search space a built-in ships: its
    default search_space.json and each per-workload submissions/<name>/search_spaces/<workload>.json
    (the spaces of the tuning studies, docs/studies/search_spaces.md)."""
    for name in NAMES:
        directory = REPO / "submissions" / name
        for path in [directory / "search_space.json", *sorted((directory / "search_spaces").glob("*.json"))]:
            if path.exists():
                yield name, str(path.relative_to(REPO))


@pytest.mark.parametrize("name, path", list(search_space_files()))
def test_search_space_lies_inside_the_valid_ranges(name: str, path: str) -> None:
    module = load_submission(name)
    space = json.loads((REPO / path).read_text())
    for key, dim in space.items():
        points = dim["feasible_points"] if "feasible_points" in dim else [dim["min"], dim["max"]]
        if key not in module.VALID_RANGES:  # a bool or a string: no range
            assert not is_numeric(module.DEFAULT_HPARAMS[key]), (name, key)
            continue
        valid = module.VALID_RANGES[key]
        assert all(p in valid for p in points), f"{name}: search space of {key} {points} leaves {valid}"


# Hyperparameters a study passes with --hparams because the built-in has no usable default: sgd_corrected
# needs a corrections file (its pydocs_bert study passes the published one, scripts/studies.sh).
STUDY_FIXED_HPARAMS: dict[str, dict[str, Any]] = {
    "sgd_corrected": {"corrections": str(REPO / "docs/studies/pydocs_bert_corrections.json")},
}


@pytest.mark.parametrize("name, path", [(n, p) for n, p in search_space_files() if "/search_spaces/" in p])
def test_every_point_a_study_draws_is_valid_on_its_workload(name: str, path: str) -> None:
    """The first 48 points (3 x 16 trials: every point a 16-trial study may run) of study seed 0 of
    each per-workload search space, over the built-in's defaults and the study's fixed hparams
    (STUDY_FIXED_HPARAMS), pass its check_hparams in every phase of the workload the file is named after
    (the check a study makes before its first trial)."""
    import workloads
    from harness.search_space import parse

    sub = loader.load(name)
    space = parse(json.loads((REPO / path).read_text()), sub.defaults, sub.name, path)
    workload = os.path.splitext(os.path.basename(path))[0]
    phases = tuple(workloads.get_workload(workload).phases)
    ctx = spec.SubmissionContext(workload, workload_abstract(workload)[1], phases)  # its model's layers
    assert sub.check_hparams is not None
    for i in range(48):
        hp = {**sub.defaults, **STUDY_FIXED_HPARAMS.get(name, {}), **space.point(0, i)}
        for k in range(len(phases)):
            sub.check_hparams(hp, dataclasses.replace(ctx, phase_index=k))


# --- each end of each range: just outside refused, a closed end accepted -------------------------


def range_cases() -> Iterator[tuple[str, str]]:
    for name in NAMES:
        for key in sorted(load_submission(name).VALID_RANGES):
            yield name, key


def outside_and_inside(valid: Range, integer: bool) -> list[tuple[float, bool]]:
    """(value, accepted) at each finite end: the end itself (accepted when closed) and the nearest
    value past it on the other side (outside when the end is closed, inside when it is open)."""
    def step(x: float, direction: float) -> float:
        return x + direction if integer else math.nextafter(x, direction * math.inf)

    cases = []
    for end, is_open, outward in ((valid.low, valid.low_open, -1.0), (valid.high, valid.high_open, 1.0)):
        if math.isinf(end):
            continue
        end_value = int(end) if integer else float(end)
        if is_open:
            cases += [(end_value, False), (step(end_value, -outward), True)]
        else:
            cases += [(end_value, True), (step(end_value, outward), False)]
    return cases


def passing_context(key: str, hp: dict[str, Any]) -> dict[str, Any]:
    """hp with what the schedule needs for a boundary value of `key` to be valid as a whole: a
    warmup over the whole span (warmup_fraction = 1) leaves no decay step for the cosine and
    linear schedules (their own check), so the boundary is tried on mlperf_polynomial."""
    if key.endswith("warmup_fraction"):
        return {**hp, key.replace("warmup_fraction", "schedule"): "mlperf_polynomial"}
    return hp


@pytest.mark.parametrize("name, key", list(range_cases()))
def test_just_outside_a_range_is_refused_and_a_closed_end_accepted(name: str, key: str,
                                                                   corrections_file: str) -> None:
    module = load_submission(name)
    valid = module.VALID_RANGES[key]
    base = passing_context(key, defaults(name, module, corrections_file))
    integer = isinstance(module.DEFAULT_HPARAMS[key], int)
    params = jax.tree.map(jnp.asarray, nest(random_params(0)))
    ctx = context(BUDGET)
    cases = outside_and_inside(valid, integer)
    assert cases, f"{name}: range {valid} of {key} has no finite end"
    for value, accepted in cases:
        hp = {**base, key: value}
        if accepted:
            module.check_hparams(hp, ctx)
            jax.eval_shape(lambda p, hp=hp: module.init(p, hp, ctx), params)
            continue
        expected = (f"submission {message_name(name, module)}: hparam {key} = {value!r} is outside {valid}"
                    f" ({valid.why}); pass a value in {valid}")
        for call in (lambda hp=hp: module.check_hparams(hp, ctx), lambda hp=hp: module.init(params, hp, ctx)):
            with pytest.raises(OutOfRange) as err:
                call()
            assert str(err.value) == expected


# --- grafts and phases ------------------------------------------------------------------------------


def test_a_graft_loaded_by_the_harness_reports_the_prefixed_key() -> None:
    """M#D and (A#B)#C built by the loader: the children's ranges under their prefixes."""
    sub = loader.load("adamw#sgd#adagrad")
    assert sub.check_hparams is not None
    hp, ctx = dict(sub.defaults), context(BUDGET)
    sub.check_hparams(hp, ctx)
    for key, value, valid in [("M.D.momentum", 2.0, "[0, 1)"), ("M.M.eps", 0.0, "(0, inf)"),
                              ("D.initial_accumulator_value", -0.1, "[0, inf)"),
                              ("M.M.warmup_steps", -3, "[-1, inf)")]:
        with pytest.raises(OutOfRange) as err:
            sub.check_hparams({**hp, key: value}, ctx)
        assert str(err.value).startswith(f"submission adamw#sgd#adagrad: hparam {key} = {value!r} is outside "
                                         f"{valid}")


def test_each_phase_is_checked_with_its_name() -> None:
    """Per-phase hparams (a list): the phase whose value is outside is named."""
    module = load_submission("adamw")
    phases = (spec.Phase(name="seq128", steps=60, global_batch_size=8, micro_batch_size=8),
              spec.Phase(name="seq512", steps=40, global_batch_size=8, micro_batch_size=8))
    ctx = spec.SubmissionContext("two_phases", param_types(), phases)
    per_phase = validate_phase_hparams([{"b2": 0.99}, {"b2": 1.0}], module.DEFAULT_HPARAMS, "adamw",
                                       [p.name for p in phases])
    module.check_hparams(per_phase[0], ctx)
    with pytest.raises(OutOfRange, match=r"^submission adamw: hparam b2 = 1\.0 in phase seq512 is outside "
                                         r"\[0, 1\)"):
        module.check_hparams(per_phase[1], dataclasses.replace(ctx, phase_index=1))
