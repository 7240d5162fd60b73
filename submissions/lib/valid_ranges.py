r"""Valid ranges of hyperparameters: the values an update rule is defined for, checked before a run.

Not the tuning ranges of ``search_space.json`` (where a study looks; tests/test_valid_ranges.py
checks that every search space lies inside these), but what the formulas allow: a learning rate
below 0 climbs the loss, a momentum mu >= 1 never forgets a gradient (v_t = sum_s mu^(t-s) g_s
grows without bound), Adam's eps = 0 gives 0 / 0 where a gradient and its moments are 0. Such
values used to train to ``completed``.

A submission declares them next to its defaults, as data::

    VALID_RANGES: valid_ranges.Ranges = {**schedules.VALID_RANGES,
                                         "learning_rate": valid_ranges.LEARNING_RATE,
                                         "momentum": valid_ranges.DECAY, ...}

and passes them to ``protocol.from_optax``, whose check_hparams (and init) call `check` before the
submission's own checks: the harness calls check_hparams with concrete values for every phase
before anything compiles or is recorded (harness/plan.py). A grafted submission M#D checks each
child with the child's check_hparams and renames a child's `OutOfRange` to its own name and the
child's prefix (``D.momentum``; submissions/lib/graft_protocol.py). Numeric hyperparameters only:
bools need none, and strings (schedule, partition) are checked by the code that reads them.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

from harness.errors import UserError


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval of the real line, each end closed or open; an infinite end is always open.

    ``value in Range(...)`` is the check (False for NaN); ``str`` is the interval as written in
    mathematics: ``[0, 1)``, ``(0, inf)``. ``why`` says in a few words what goes wrong outside.
    Build one with `at_least`, `above`, `closed` or `half_open`.
    """

    low: float
    high: float
    low_open: bool
    high_open: bool
    why: str = ""

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"empty range: low {self.low} > high {self.high}")
        if math.isinf(self.low) and not self.low_open or math.isinf(self.high) and not self.high_open:
            raise ValueError("an infinite end of a range is open")

    def __contains__(self, value: Any) -> bool:
        above_low = self.low < value if self.low_open else self.low <= value
        below_high = value < self.high if self.high_open else value <= self.high
        return bool(above_low and below_high)

    def __str__(self) -> str:
        return (f"{'(' if self.low_open else '['}{self.low:g}, "
                f"{self.high:g}{')' if self.high_open else ']'}")


def at_least(low: float, why: str = "") -> Range:
    """[low, inf)."""
    return Range(low, math.inf, False, True, why)


def above(low: float, why: str = "") -> Range:
    """(low, inf)."""
    return Range(low, math.inf, True, True, why)


def closed(low: float, high: float, why: str = "") -> Range:
    """[low, high]."""
    return Range(low, high, False, False, why)


def half_open(low: float, high: float, why: str = "") -> Range:
    """[low, high)."""
    return Range(low, high, False, True, why)


#: hparam name -> its valid range. Every numeric (float or int, not bool) key of a built-in's
#: DEFAULT_HPARAMS has one (tests/test_valid_ranges.py).
Ranges = Mapping[str, Range]

# --- the ranges shared by the built-in submissions ------------------------------------------------

#: A learning rate (peak, initial or final of a schedule): the step goes down the gradient.
LEARNING_RATE = at_least(0.0, "a negative rate climbs the loss")
#: L2 or decoupled weight decay lambda: it shrinks the weights.
WEIGHT_DECAY = at_least(0.0, "a negative decay grows the weights")
#: An exponential decay rate (momentum mu, Adam's b1 and b2): v_t = mu v_{t-1} + ... forgets.
DECAY = half_open(0.0, 1.0, "below 0 flips the sign, 1 or more never forgets a gradient")
#: A fraction of a span of steps (warmup_fraction).
FRACTION = closed(0.0, 1.0, "a fraction of the schedule's steps")
#: An exponent of a polynomial schedule, (t / w) ** p: 0 makes it constant, < 0 infinite at t = 0.
POWER = above(0.0, "the polynomial schedule's exponent must be positive")
#: A divisor's guard eps in g / (sqrt(v) + eps) where v can be 0 (Adam, LAMB).
DIVISOR_EPS = above(0.0, "eps = 0 divides 0 by 0 where a gradient and its moments are 0")
#: Adam's moments and denominator (AdamW, LAMB, BERT's AdamW): decays b1, b2 in [0, 1), eps > 0.
ADAM_MOMENTS: dict[str, Range] = {"b1": DECAY, "b2": DECAY, "eps": DIVISOR_EPS}
#: An eps added where the code already guards 0 / 0 (AdaGrad's sqrt(a + eps), LARS' denominator).
GUARDED_EPS = at_least(0.0, "a negative eps can make the denominator 0 or negative")


# --- the check ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Violation:
    """A hyperparameter's value outside its valid range; ``str`` is the one-line error message."""

    submission: str
    name: str
    value: Any
    valid: Range
    phase: str | None = None  # the phase's name, when the workload has several

    def within(self, submission: str, prefix: str) -> Violation:
        """The same violation as seen by a graft `submission` that passes `prefix` + name to the
        child (``D.`` + ``momentum``)."""
        return dataclasses.replace(self, submission=submission, name=prefix + self.name)

    def __str__(self) -> str:
        phase = f" in phase {self.phase}" if self.phase else ""
        why = f" ({self.valid.why})" if self.valid.why else ""
        return (f"submission {self.submission}: hparam {self.name} = {_number(self.value)}{phase} is "
                f"outside {self.valid}{why}; pass a value in {self.valid}")


class OutOfRange(UserError):
    """UserError for a `Violation` (kept as ``.violation``, so that a graft can rename it)."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(violation)  # str(error) == str(violation); pickles as OutOfRange(violation)
        self.violation = violation


def check(submission: str, ranges: Ranges, hparams: Mapping[str, Any], phase: str | None = None) -> None:
    """OutOfRange (one line naming the submission, the hparam, its value, the range and `phase`)
    for the first hparam whose value lies outside its range; hparams without a range, and ranges
    of hparams not given, are not looked at. Values are concrete (on the host, before tracing)."""
    for name, valid in ranges.items():
        if name in hparams and hparams[name] not in valid:
            raise OutOfRange(Violation(submission, name, hparams[name], valid, phase))


def _number(x: Any) -> str:
    """A value as Python prints it: 7.0, -2, nan (numpy and JAX scalars as Python numbers)."""
    if getattr(x, "shape", None) == () and hasattr(x, "item"):  # a numpy or JAX scalar
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        return repr(x)
    return repr(int(x)) if isinstance(x, numbers.Integral) else repr(float(x))
