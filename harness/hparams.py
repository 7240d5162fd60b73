"""Validation of a submission's DEFAULT_HPARAMS (their types) and of user-given hyperparameters
against them, and which of them are traced in the compiled step (harness/spec.py: "Static and
traced hyperparameters"). Whether a value is valid for the update rule (a learning rate >= 0, a
momentum in [0, 1)) is the submission's to say: its check_hparams (submissions/lib/valid_ranges.py)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.errors import UserError

#: The types of a hyperparameter (harness/spec.py: ``DEFAULT_HPARAMS: dict[str, float | int | bool
#: | str]``): the types `validate_hparams` converts given values to, and the scalars a compiled
#: step takes as static or traced arguments.
TYPES = (bool, int, float, str)


def check_defaults(defaults: Mapping[Any, Any], where: str) -> None:
    """UserError (one line naming `where`, e.g. ``submission path/to/mine.py``, and the key) unless
    every key of a DEFAULT_HPARAMS is a string and every value a bool, int, finite float or str.

    A list (one value per phase) or None is not a default: per-phase values are given with
    --hparams as a list of mappings, and every hparam has a value of one type (_coerce).
    """
    for name, value in defaults.items():
        if not isinstance(name, str):
            raise UserError(f"{where}: DEFAULT_HPARAMS has the key {name!r} ({type(name).__name__}); "
                            "name every hyperparameter with a string")
        if not isinstance(value, TYPES):
            raise UserError(f"{where}: DEFAULT_HPARAMS[{name!r}] is {value!r} ({type(value).__name__}); "
                            "a default must be a bool, int, float or str (per-phase values go in "
                            "--hparams as a list of objects)")
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{where}: DEFAULT_HPARAMS[{name!r}] is {value!r}; a default must be finite")


def _coerce(name: str, value: Any, default: Any, submission: str) -> Any:
    """``value`` converted to the type of ``default``, or UserError (one line)."""
    is_bool = isinstance(value, bool)
    convert: Callable[[Any], Any]
    if isinstance(default, bool):
        ok, kind, convert = is_bool, "a bool (true/false)", bool
    elif isinstance(default, int):
        ok, kind, convert = not is_bool and isinstance(value, numbers.Integral), "an integer", int
    elif isinstance(default, float):
        ok, kind, convert = not is_bool and isinstance(value, numbers.Real), "a number", float
    elif isinstance(default, str):
        ok, kind, convert = isinstance(value, str), "a string", str
    else:  # not a default check_defaults lets through (the loader calls it on every submission)
        raise TypeError(f"default of hparam {name!r} of {submission} has unsupported type "
                        f"{type(default).__name__}")
    if not ok:
        raise UserError(f"hparam {name!r} of submission {submission} must be {kind} like its "
                             f"default {default!r}, got {value!r} ({type(value).__name__})")
    value = convert(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"hparam {name!r} of submission {submission} must be finite, got {value!r}")
    return value


def validate_hparams(given: Mapping[str, Any], defaults: Mapping[str, Any], submission: str
                     ) -> dict[str, Any]:
    """``defaults`` updated with ``given``; every value has its default's type.

    Rules: keys must be known; bool is not a number; an int is accepted (and converted) where the
    default is a float; a float is not accepted for an int or a bool; strings only for string defaults.
    """
    merged = dict(defaults)
    for name, value in given.items():
        if name not in defaults:
            raise UserError(f"unknown hparam {name!r} for submission {submission}; known hparams: "
                                 f"{', '.join(sorted(defaults)) or 'none'}")
        merged[name] = _coerce(name, value, defaults[name], submission)
    return merged


def validate_phase_hparams(given: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                           defaults: Mapping[str, Any], submission: str, phases: Sequence[str]
                           ) -> list[dict[str, Any]]:
    """One validated mapping per phase.

    ``given`` is either one mapping (used for every phase) or a list with exactly one mapping per
    phase (independent hyperparameters per phase, as Nado et al. tune Adam for BERT, Table 8).
    """
    if isinstance(given, Mapping):
        merged = validate_hparams(given, defaults, submission)
        return [dict(merged) for _ in phases]
    if not isinstance(given, Sequence) or isinstance(given, str) or \
            not all(isinstance(h, Mapping) for h in given):
        raise UserError(f"hparams of submission {submission} must be a JSON object, or a list of "
                             f"objects with one per phase ({', '.join(phases)})")
    if len(given) != len(phases):
        raise UserError(f"hparams list has {len(given)} mapping(s) but the workload has "
                             f"{len(phases)} phase(s) ({', '.join(phases)}); give one per phase or a "
                             "single object for all")
    return [validate_hparams(h, defaults, submission) for h in given]


def is_traced(name: str, defaults: Mapping[str, Any], static_names: frozenset[str]) -> bool:
    """Whether hparam `name` is a traced argument of the compiled step: its default is a float
    (not a bool) and the submission does not declare it static. Everything else is static."""
    default = defaults[name]
    return isinstance(default, float) and not isinstance(default, bool) and name not in static_names


def split_static(hparams: Mapping[str, Any], defaults: Mapping[str, Any], static_names: frozenset[str]
                 ) -> tuple[dict[str, Any], dict[str, float]]:
    """(static hparams: Python values closed over by the compiled step, traced hparams: the numeric
    values passed to it as arguments)."""
    static = {k: v for k, v in hparams.items() if not is_traced(k, defaults, static_names)}
    traced = {k: float(v) for k, v in hparams.items() if is_traced(k, defaults, static_names)}
    return static, traced
