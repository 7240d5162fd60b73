"""validate_hparams: one-line UserErrors for unknown keys and wrong types; the submissions' own files."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from _submission_helpers import REPO, context, load_submission, nest, random_params

from harness import spec
from harness.hparams import check_defaults, validate_hparams
from harness.submission_loader import builtin_names, load

DEFAULTS = {"learning_rate": 0.1, "warmup_steps": 10, "nesterov": True, "schedule": "cosine"}


def user_error(given: dict) -> str:
    with pytest.raises(spec.UserError) as err:
        validate_hparams(given, DEFAULTS, "toy")
    message = str(err.value)
    assert "\n" not in message and "toy" in message
    return message


def test_merges_and_converts_int_to_float() -> None:
    merged = validate_hparams({"learning_rate": 2, "warmup_steps": np.int64(3)}, DEFAULTS, "toy")
    assert merged == {**DEFAULTS, "learning_rate": 2.0, "warmup_steps": 3}
    assert type(merged["learning_rate"]) is float and type(merged["warmup_steps"]) is int
    assert validate_hparams({}, DEFAULTS, "toy") == DEFAULTS
    assert validate_hparams({"learning_rate": np.float64(0.5), "nesterov": False, "schedule": "linear"},
                            DEFAULTS, "toy")["learning_rate"] == 0.5


def test_unknown_key_lists_known_keys() -> None:
    message = user_error({"learning_rat": 0.1})
    assert "'learning_rat'" in message
    assert all(k in message for k in DEFAULTS)


@pytest.mark.parametrize("key, value", [
    ("learning_rate", True),       # bool is not a number
    ("learning_rate", "0.1"),      # no strings for numbers
    ("warmup_steps", 10.0),        # a float is not an int
    ("warmup_steps", False),
    ("nesterov", 1),               # an int is not a bool
    ("nesterov", 1.0),
    ("nesterov", "true"),
    ("schedule", 3),               # strings only where the default is a string
    ("learning_rate", float("nan")),
])
def test_wrong_types(key: str, value: object) -> None:
    message = user_error({key: value})
    assert repr(key) in message


@pytest.mark.parametrize("name", builtin_names())
def test_submission_defaults_and_search_space_validate(name: str) -> None:
    module = load_submission(name)
    defaults = module.DEFAULT_HPARAMS
    assert validate_hparams(defaults, defaults, name) == defaults
    # grafted built-ins (M#D) namespace each child's hparams under "M." and "D."
    prefixes = ("M.", "D.") if "M.learning_rate" in defaults else ("",)
    for p in prefixes:
        assert {p + "schedule", p + "learning_rate", p + "warmup_fraction"} <= set(defaults)
        # exact warmup step counts from the papers (-1: use warmup_fraction) and per-phase restarts
        assert defaults[p + "warmup_steps"] == -1 and defaults[p + "restart_per_phase"] is False
    assert callable(module.next_phase) and callable(module.check_hparams)
    assert isinstance(module.STATIC_HPARAMS, frozenset) and module.STATIC_HPARAMS <= set(defaults)
    space = json.loads((REPO / "submissions" / name / "search_space.json").read_text())
    for key, dim in space.items():
        points = dim.get("feasible_points", [dim.get("min"), dim.get("max")])
        # a dimension may carry a "note" (harness/search_space.py: documentation only)
        assert set(dim) - {"note"} in ({"feasible_points"}, {"min", "max", "scaling"}), (name, key)
        for point in points:
            validate_hparams({key: point}, defaults, name)


@pytest.mark.parametrize("value", [-1.0, -1e-3])
@pytest.mark.parametrize("name", ["adamw", "lamb"])
def test_negative_grad_clip_norm_is_a_check_error(name: str, value: float) -> None:
    """grad_clip_norm: 0 is off, > 0 clips; a negative value is a one-line UserError of
    check_hparams (and of init, which checks first), naming the hparam and the value."""
    module = load_submission(name)
    assert module.DEFAULT_HPARAMS["grad_clip_norm"] == 0.0
    assert "grad_clip_norm" in module.STATIC_HPARAMS  # 0 means no clipping transform at all
    hparams = validate_hparams({"grad_clip_norm": value}, module.DEFAULT_HPARAMS, name)
    params = nest(random_params(0))
    for call in (lambda: module.check_hparams(hparams, context(10)),
                 lambda: module.init(params, hparams, context(10))):
        with pytest.raises(spec.UserError) as err:
            call()
        message = str(err.value)
        assert "\n" not in message and "grad_clip_norm" in message and str(value) in message
    for ok in (0.0, 1.0):
        module.check_hparams({**hparams, "grad_clip_norm": ok}, context(10))
        module.init(params, {**hparams, "grad_clip_norm": ok}, context(10))


# --- DEFAULT_HPARAMS of the wrong types: one line naming the module and the key ------------------

MODULE = '''import jax

DEFAULT_HPARAMS = {defaults}


def init(params, hparams, ctx):
    return ()


def update(grads, state, params, hparams, ctx):
    return jax.tree.map(lambda g: -0.1 * g, grads), state
'''


@pytest.mark.parametrize("defaults, expected", [
    ("[('learning_rate', 0.1)]", "does not define DEFAULT_HPARAMS as a dict of hyperparameters (it is a list)"),
    ("None", "does not define DEFAULT_HPARAMS as a dict of hyperparameters; define"),
    ("{'learning_rate': 0.1, 'momentum': None}", "DEFAULT_HPARAMS['momentum'] is None (NoneType); a default "
                                                 "must be a bool, int, float or str"),
    ("{'learning_rate': [0.1, 0.01]}", "DEFAULT_HPARAMS['learning_rate'] is [0.1, 0.01] (list)"),
    ("{'betas': (0.9, 0.999)}", "DEFAULT_HPARAMS['betas'] is (0.9, 0.999) (tuple)"),
    ("{'learning_rate': {'peak': 0.1}}", "DEFAULT_HPARAMS['learning_rate'] is {'peak': 0.1} (dict)"),
    ("{'learning_rate': float('nan')}", "DEFAULT_HPARAMS['learning_rate'] is nan; a default must be finite"),
    ("{1: 0.1}", "DEFAULT_HPARAMS has the key 1 (int); name every hyperparameter with a string"),
])
def test_bad_default_hparams_are_one_line_naming_module_and_key(tmp_path: Any, defaults: str,
                                                                  expected: str) -> None:
    """A default of None or a list was a TypeError in validate_hparams once a value was given
    (or reached the submission unchecked); now the loader refuses the module."""
    path = tmp_path / "bad_defaults.py"
    path.write_text(MODULE.format(defaults=defaults))
    with pytest.raises(spec.UserError) as err:
        load(str(path))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"submission {path}") and expected in message, message


def test_check_defaults_accepts_the_hparam_types() -> None:
    check_defaults({"lr": 0.1, "steps": 3, "nesterov": True, "schedule": "cosine", "f64": np.float64(0.5)},
                   "toy")
    with pytest.raises(spec.UserError, match=r"^toy: DEFAULT_HPARAMS\['lr'\] is inf; a default must be finite$"):
        check_defaults({"lr": float("inf")}, "toy")
