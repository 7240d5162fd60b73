"""Validation of user-given hyperparameters against a submission's DEFAULT_HPARAMS."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from harness import spec


def _coerce(name: str, value: Any, default: Any, submission: str) -> Any:
    """``value`` converted to the type of ``default``, or spec.UserError (one line)."""
    is_bool = isinstance(value, bool)
    if isinstance(default, bool):
        ok, kind, convert = is_bool, "bool (true/false)", bool
    elif isinstance(default, int):
        ok, kind, convert = not is_bool and isinstance(value, numbers.Integral), "integer", int
    elif isinstance(default, float):
        ok, kind, convert = not is_bool and isinstance(value, numbers.Real), "number", float
    elif isinstance(default, str):
        ok, kind, convert = isinstance(value, str), "string", str
    else:
        raise TypeError(f"default of hparam {name!r} of {submission} has unsupported type "
                        f"{type(default).__name__}")
    if not ok:
        raise spec.UserError(f"hparam {name!r} of submission {submission} must be a {kind} like its "
                             f"default {default!r}, got {value!r} ({type(value).__name__})")
    value = convert(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise spec.UserError(f"hparam {name!r} of submission {submission} must be finite, got {value!r}")
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
            raise spec.UserError(f"unknown hparam {name!r} for submission {submission}; known hparams: "
                                 f"{', '.join(sorted(defaults)) or 'none'}")
        merged[name] = _coerce(name, value, defaults[name], submission)
    return merged
