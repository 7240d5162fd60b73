"""Search spaces of tuning studies (AlgoPerf's format) and their quasi-random points.

A search space is a JSON object mapping hyperparameter names of the submission to one of::

    {"min": a, "max": b, "scaling": "linear" | "log"}     a continuous range (log: a > 0)
    {"feasible_points": [v1, v2, ...]}                     a discrete set (any JSON values)

Either may also carry ``"note": "text"``: where the range comes from (a paper's table, a probe).
Notes are documentation only: they are kept in ``SearchSpace.notes`` and left out of ``raw``, so
the canonical JSON, the hash that names a study and the settings a resumed study must match are
those of the ranges alone (editing a note neither renames a study nor stops it resuming). Why a
key inside the dimension and not a top-level notes object: AlgoPerf's reader (algoperf/halton.py,
generate_search) reads only feasible_points, or min, max and scaling, of each dimension, so a
file with notes stays an AlgoPerf search space; a top-level key would read as a hyperparameter.

Points (Bousquet et al. 2017, the quasi-random search of Nado et al. and AlgoPerf): the i-th point
of a scrambled Halton sequence in [0, 1)^d (scipy.stats.qmc.Halton, seeded by the study seed; one
dimension per hyperparameter, in sorted name order), mapped per dimension as

    linear:           a + u (b - a)
    log:              exp(log a + u (log b - log a))
    feasible points:  v[floor(u n)]          (each of the n points covers 1/n of [0, 1))

Point i depends only on (space, study seed, i): a study resumed after a kill draws the same points.
Why scipy's Halton and not a hand-written sequence: it is the well-tested standard, scrambled
(Owen-type digit permutations) so that low dimensions are not correlated, and seeded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.stats import qmc

from harness import json_files
from harness.errors import UserError
from harness.hparams import validate_hparams

SCALINGS = ("linear", "log")
#: The optional documentation key of a dimension (module docstring).
NOTE = "note"


@dataclasses.dataclass(frozen=True)
class Dimension:
    name: str
    low: float | None = None  # continuous
    high: float | None = None
    scaling: str = "linear"
    points: tuple[Any, ...] = ()  # discrete

    @property
    def is_log(self) -> bool:
        return self.scaling == "log"

    def value(self, u: float) -> Any:
        """The value at u in [0, 1) (module docstring)."""
        if self.points:
            return self.points[min(int(u * len(self.points)), len(self.points) - 1)]
        assert self.low is not None and self.high is not None
        if self.is_log:
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]  # sorted by name
    raw: Mapping[str, Any]  # the JSON as given, without the notes
    notes: Mapping[str, str] = dataclasses.field(default_factory=dict)  # hparam -> its "note"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    @property
    def canonical(self) -> str:
        return json.dumps(self.raw, sort_keys=True, separators=(",", ":"))

    @property
    def hash(self) -> str:
        """12 hex digits of sha256 of the canonical JSON: names the space in results."""
        return hashlib.sha256(self.canonical.encode()).hexdigest()[:12]

    def point(self, seed: int, index: int) -> dict[str, Any]:
        """The index-th quasi-random point of the study seeded by `seed` (module docstring)."""
        halton = qmc.Halton(d=len(self.dimensions), scramble=True, rng=np.random.default_rng(seed))
        if index:
            halton.fast_forward(index)
        u = halton.random(1)[0]
        return {d.name: d.value(float(x)) for d, x in zip(self.dimensions, u)}


def parse(raw: Any, defaults: Mapping[str, Any], submission: str, source: str) -> SearchSpace:
    """The search space `raw` (parsed JSON from `source`) for a submission with `defaults`.

    One-line UserError for: not an object, an unknown hyperparameter, a dimension that is neither a
    range nor feasible points, min > max, log scaling with min <= 0, an unknown scaling, empty
    feasible points, values the hyperparameter cannot take (type, e.g. a string for a float), or a
    note that is not a string. Notes are split off (module docstring).
    """
    def bad(what: str) -> UserError:
        return UserError(f"search space {source}: {what}")

    if not isinstance(raw, Mapping) or not raw:
        raise bad("must be a JSON object mapping hyperparameters to {\"min\", \"max\", \"scaling\"} or "
                  "{\"feasible_points\": [...]}")
    dims, ranges, notes = [], {}, {}
    for name in sorted(raw):
        spec = raw[name]
        if name not in defaults:
            raise bad(f"unknown hparam {name!r} of submission {submission}; known: {', '.join(sorted(defaults))}")
        if not isinstance(spec, Mapping):
            raise bad(f"{name} must be an object")
        if NOTE in spec:
            if not isinstance(spec[NOTE], str):
                raise bad(f"{name}: \"{NOTE}\" must be a string, got {json.dumps(spec[NOTE])}")
            notes[name] = spec[NOTE]
            spec = {k: v for k, v in spec.items() if k != NOTE}
        ranges[name] = spec
        if "feasible_points" in spec:
            points = spec["feasible_points"]
            if set(spec) != {"feasible_points"}:
                raise bad(f"{name}: feasible_points goes alone, got {', '.join(sorted(spec))}")
            if not isinstance(points, list) or not points:
                raise bad(f"{name}: feasible_points must be a non-empty list")
            for v in points:  # each a value the hyperparameter can take
                try:
                    validate_hparams({name: v}, defaults, submission)
                except UserError as e:
                    raise bad(f"feasible point {v!r}: {e}") from None
            dims.append(Dimension(name, points=tuple(points)))
            continue
        if set(spec) - {"min", "max", "scaling"} or not {"min", "max"} <= set(spec):
            raise bad(f"{name}: a range is {{\"min\", \"max\", \"scaling\"}}, got {', '.join(sorted(spec))}")
        low, high, scaling = spec["min"], spec["max"], spec.get("scaling", "linear")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in (low, high)):
            raise bad(f"{name}: min and max must be finite numbers, got {low!r} and {high!r}")
        if not isinstance(defaults[name], float) or isinstance(defaults[name], bool):
            raise bad(f"{name}: a range needs a float hparam (default {defaults[name]!r}); "
                      "give feasible_points instead")
        if low > high:
            raise bad(f"{name}: min {low} > max {high}")
        if scaling not in SCALINGS:
            raise bad(f"{name}: unknown scaling {scaling!r}; use linear or log")
        if scaling == "log" and low <= 0:
            raise bad(f"{name}: log scaling needs min > 0, got {low}")
        dims.append(Dimension(name, float(low), float(high), scaling))
    return SearchSpace(tuple(dims), ranges, notes)


def load(path: str | None, submission: Any) -> SearchSpace:
    """The search space at `path`, else the submission's own search_space.json."""
    if path is None:
        if submission.search_space is None:
            raise UserError(f"submission {submission.name} has no search_space.json; pass --search_space=FILE")
        return parse(submission.search_space, submission.defaults, submission.name,
                     f"of submission {submission.name}")
    raw = json_files.read(path, f"--search_space={path}")
    return parse(raw, submission.defaults, submission.name, path)
