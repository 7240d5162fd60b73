"""Learning-rate scaling with the batch size: a rule declared in the hyperparameters, default off.

    "lr_scaling": "sqrt" | "linear" | "none",   "lr_reference_batch_size": B_ref

(in --hparams, a named config, or per phase) makes every learning rate of the submission, each
hparam named ``learning_rate`` or ``*_learning_rate`` (a graft's ``M.``/``D.`` ones too: the
schedule's peak, initial and final rates, so the whole schedule lr_t is scaled), the given value
times

    f(B) = sqrt(B / B_ref)   "sqrt": You et al. 2019, Sec. 4 and Tables 4-5 ("square root LR
                             scaling"; BERT: 5/(2^3 x 10^3) at 512, ..., 5/(2^0 x 10^3) at 32K)
    f(B) = B / B_ref         "linear": Goyal et al. 2017 ("when the minibatch size is multiplied by
                             k, multiply the learning rate by k")

where B is the phase's global batch size (SubmissionContext.global_batch_size: per phase, so
You et al.'s 64K/32K mixed batch gets sqrt(2) x the 32K rate in phase 1 only). The given rates are
the rates at B_ref.

Why the harness applies it (harness/plan.py), not each submission: every built-in and every user
submission with a learning rate gets the rule with no change to its code, hence no new
DEFAULT_HPARAMS keys (which would change the hparams, and the row id, of every existing run). The
submission receives the scaled rates (its check_hparams and update see them); the results record
the rates as given plus the two keys, so a row declares its rule and the rows of one rule at
several batch sizes share their hparams. Without the keys (or with "none") nothing changes and
nothing is recorded. The two names are reserved for this rule.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.errors import UserError

RULE = "lr_scaling"
REFERENCE = "lr_reference_batch_size"
KEYS = (RULE, REFERENCE)
RULES = ("none", "sqrt", "linear")


@dataclasses.dataclass(frozen=True)
class LrScaling:
    """A declared rule: learning rates given for `reference_batch_size`, scaled to other batches."""

    rule: str  # "sqrt" | "linear"
    reference_batch_size: int

    def factor(self, batch_size: int) -> float:
        """f(B) of the module docstring."""
        ratio = batch_size / self.reference_batch_size
        return math.sqrt(ratio) if self.rule == "sqrt" else ratio

    def as_hparams(self) -> dict[str, Any]:
        """The rule as the hparams that declare it (what the results record)."""
        return {RULE: self.rule, REFERENCE: self.reference_batch_size}


def parse(mapping: Mapping[str, Any]) -> tuple[dict[str, Any], LrScaling | None]:
    """(`mapping` without the rule's keys, the rule it declares or None for none); UserError (one
    line) for a malformed rule."""
    rest = {k: v for k, v in mapping.items() if k not in KEYS}
    rule, reference = mapping.get(RULE, "none"), mapping.get(REFERENCE)
    if rule not in RULES:
        raise UserError(f"hparam {RULE}={rule!r}: use one of {', '.join(RULES)}")
    if rule == "none":
        if reference is not None:
            raise UserError(f"hparam {REFERENCE} is given without a rule; set {RULE} to sqrt or linear, "
                            "or drop it")
        return rest, None
    if isinstance(reference, bool) or not isinstance(reference, int) or reference < 1:
        raise UserError(f"hparam {RULE}={rule} needs {REFERENCE}: the positive integer batch size its learning "
                        f"rates are given for (e.g. 32768), got {reference!r}")
    return rest, LrScaling(rule, reference)


def split(given: Mapping[str, Any] | Sequence[Mapping[str, Any]], phases: int
          ) -> tuple[Mapping[str, Any] | Sequence[Mapping[str, Any]], list[LrScaling | None]]:
    """(the hparams without the rule's keys, in the form given, the rule of each of `phases`
    phases). One mapping declares the rule for every phase; a list (one mapping per phase) per
    phase. A list of another length or of non-mappings is returned as it is, for the
    validation of the hparams to name."""
    if isinstance(given, Mapping):
        rest, rule = parse(given)
        return rest, [rule] * phases
    if isinstance(given, str) or not all(isinstance(h, Mapping) for h in given) or len(given) != phases:
        return given, [None] * phases
    parsed = [parse(h) for h in given]
    return [rest for rest, _ in parsed], [rule for _, rule in parsed]


def is_learning_rate(name: str) -> bool:
    """Whether the hparam `name` is a learning rate the rule scales: ``learning_rate`` or
    ``*_learning_rate``, after a graft's ``M.``/``D.`` prefixes."""
    last = name.rsplit(".", 1)[-1]
    return last == "learning_rate" or last.endswith("_learning_rate")


def scaled(hparams: Mapping[str, Any], rule: LrScaling | None, batch_size: int, submission: str
           ) -> dict[str, Any]:
    """The validated `hparams` with every learning rate times rule.factor(batch_size) (unchanged
    without a rule); UserError when the rule is declared for a submission without a learning rate."""
    if rule is None:
        return dict(hparams)
    rates = [k for k, v in hparams.items() if is_learning_rate(k) and isinstance(v, float)]
    if not rates:
        raise UserError(f"hparam {RULE}={rule.rule}: submission {submission} has no learning rate to scale "
                        "(a float hparam named learning_rate or *_learning_rate)")
    factor = rule.factor(batch_size)
    return {k: v * factor if k in rates else v for k, v in hparams.items()}


def recorded(hparams: Mapping[str, Any], rule: LrScaling | None) -> dict[str, Any]:
    """What the results record of a phase's hparams: the rates as given, and the rule if any."""
    return {**hparams, **rule.as_hparams()} if rule is not None else dict(hparams)
