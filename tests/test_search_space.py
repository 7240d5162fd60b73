"""Search spaces (harness/search_space.py): the quasi-random points and the one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import qmc

from harness.errors import UserError
from harness.search_space import parse

REPO = Path(__file__).resolve().parent.parent

DEFAULTS = {"learning_rate": 0.1, "weight_decay": 1e-4, "momentum": 0.9, "nesterov": False,
            "schedule": "cosine", "warmup_steps": -1}
SPACE = {"learning_rate": {"min": 0.01, "max": 10.0, "scaling": "log"},
         "weight_decay": {"min": 0.0, "max": 0.5, "scaling": "linear"},
         "momentum": {"feasible_points": [0.8, 0.9, 0.95]},
         "nesterov": {"feasible_points": [False, True]}}


def space():  # noqa: ANN201
    return parse(SPACE, DEFAULTS, "toy", "test")


def test_points_are_the_scrambled_halton_sequence_mapped_per_dimension() -> None:
    """Point i is the i-th point of scipy's scrambled Halton sequence (dimensions in name order:
    learning_rate, momentum, nesterov, weight_decay) mapped log / discrete / discrete / linear."""
    s = space()
    assert s.names == ("learning_rate", "momentum", "nesterov", "weight_decay")
    u = qmc.Halton(d=4, scramble=True, rng=np.random.default_rng(7)).random(20)
    for i in range(20):
        p = s.point(7, i)
        assert p["learning_rate"] == pytest.approx(10 ** (-2 + 3 * u[i, 0]), rel=1e-12)
        assert p["momentum"] == [0.8, 0.9, 0.95][int(u[i, 1] * 3)]
        assert p["nesterov"] == [False, True][int(u[i, 2] * 2)]
        assert p["weight_decay"] == pytest.approx(0.5 * u[i, 3], rel=1e-12)


def test_points_cover_the_space_and_depend_only_on_seed_and_index() -> None:
    s = space()
    points = [s.point(3, i) for i in range(64)]
    assert [s.point(3, i) for i in reversed(range(64))][::-1] == points  # any order, same points
    assert s.point(4, 0) != points[0]  # another study seed, other points
    lr = np.log10([p["learning_rate"] for p in points])
    # low discrepancy: every decade of the log range holds about a third of the points
    counts = np.histogram(lr, bins=3, range=(-2, 1))[0]
    assert all(17 <= c <= 26 for c in counts), counts
    assert {p["momentum"] for p in points} == {0.8, 0.9, 0.95}
    assert {p["nesterov"] for p in points} == {False, True}
    assert all(0.0 <= p["weight_decay"] <= 0.5 for p in points)


def test_hash_names_the_space() -> None:
    assert space().hash == parse(dict(reversed(list(SPACE.items()))), DEFAULTS, "toy", "t").hash
    changed = {**SPACE, "momentum": {"feasible_points": [0.8, 0.9]}}
    assert parse(changed, DEFAULTS, "toy", "t").hash != space().hash
    assert len(space().hash) == 12


@pytest.mark.parametrize("raw, message", [
    ({"learning_rat": {"min": 0.1, "max": 1.0}}, "unknown hparam 'learning_rat'"),
    ({"learning_rate": {"min": 1.0, "max": 0.1}}, "min 1.0 > max 0.1"),
    ({"learning_rate": {"min": 0.0, "max": 1.0, "scaling": "log"}}, "log scaling needs min > 0"),
    ({"learning_rate": {"min": 0.1, "max": 1.0, "scaling": "exp"}}, "unknown scaling 'exp'"),
    ({"momentum": {"feasible_points": []}}, "non-empty list"),
    ({"momentum": {"feasible_points": ["fast"]}}, "must be a number"),
    ({"nesterov": {"min": 0, "max": 1}}, "a range needs a float hparam"),
    ({"momentum": {"min": 0.1}}, "a range is"),
    ({"momentum": [0.9]}, "must be an object"),
    ({}, "must be a JSON object"),
    ({"momentum": {"feasible_points": [0.9], "min": 0.1}}, "feasible_points goes alone"),
    ({"learning_rate": {"min": 0.1, "max": math.inf}}, "finite numbers"),
    ({"momentum": {"feasible_points": [0.9], "note": 3}}, 'momentum: "note" must be a string, got 3'),
    ({"learning_rate": {"min": 0.1, "max": 1.0, "notes": "typo"}}, "a range is"),
])
def test_malformed_spaces_are_one_line_errors(raw: dict, message: str) -> None:
    with pytest.raises(UserError, match=message) as e:
        parse(raw, DEFAULTS, "toy", "bad.json")
    assert "\n" not in str(e.value) and str(e.value).startswith("search space bad.json:")


def test_notes_are_kept_apart_from_the_ranges() -> None:
    """A "note" per dimension (range or feasible points) is documentation: SearchSpace.notes has
    it, while raw, the canonical JSON, the hash and the points are those of the space without notes
    (editing a note neither renames a study nor changes what it draws)."""
    noted = {name: {**dim, "note": f"from Table {i}"} for i, (name, dim) in enumerate(SPACE.items())}
    s = parse(noted, DEFAULTS, "toy", "noted.json")
    assert s.notes == {name: f"from Table {i}" for i, name in enumerate(SPACE)}
    assert s.raw == SPACE and s.canonical == space().canonical and s.hash == space().hash
    assert [s.point(5, i) for i in range(8)] == [space().point(5, i) for i in range(8)]
    assert space().notes == {}
    edited = {**noted, "momentum": {**noted["momentum"], "note": "another source"}}
    assert parse(edited, DEFAULTS, "toy", "t").hash == s.hash


def test_builtin_search_spaces_parse() -> None:
    from harness import submission_loader

    for name in submission_loader.builtin_names():
        sub = submission_loader.load(name)
        if sub.search_space is not None:
            parse(sub.search_space, sub.defaults, sub.name, name).point(0, 0)


def workload_search_spaces() -> list[tuple[str, Path]]:
    """(built-in, file) of every per-workload search space, submissions/<name>/search_spaces/<workload>.json."""
    return [(path.parent.parent.name, path) for path in sorted(REPO.glob("submissions/*/search_spaces/*.json"))]


@pytest.mark.parametrize("name, path", workload_search_spaces(), ids=lambda x: str(x).split("/submissions/")[-1])
def test_workload_search_spaces_parse_and_note_every_range(name: str, path: Path) -> None:
    """The study spaces of docs/studies/search_spaces.md: named after a known workload, parsed with
    the built-in's own hyperparameters, and every dimension says where it comes from."""
    import workloads
    from harness import submission_loader

    assert path.stem in workloads.workload_names(), f"{path}: no workload named {path.stem}"
    sub = submission_loader.load(name)
    s = parse(json.loads(path.read_text()), sub.defaults, sub.name, str(path))
    assert set(s.notes) == set(s.names), f"{path}: no note for {sorted(set(s.names) - set(s.notes))}"
    assert all(len(note) > 20 for note in s.notes.values()), path


def test_the_graft_space_is_one_of_adamw_hash_sgd() -> None:
    """The grafting study runs --submission=adamw#sgd with adam_graft_sgd's space: same hparam names."""
    from harness import submission_loader

    path = REPO / "submissions" / "adam_graft_sgd" / "search_spaces" / "pydocs_bert.json"
    sub = submission_loader.load("adamw#sgd")
    s = parse(json.loads(path.read_text()), sub.defaults, sub.name, str(path))
    assert set(s.names) == {"lr_scale", "D.momentum", "D.weight_decay"}
