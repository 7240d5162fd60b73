"""Named hyperparameter configurations of a submission: submissions/<name>/configs/<config>.json.

A configuration reproduces a setting from a paper (Nado et al. Table 6 Configuration A, ...)::

    {"workload": "imagenet_resnet50", "source": "Nado et al. 2021, Table 6, Configuration A",
     "hparams": {...} or [{phase 1}, {phase 2}], "knobs": {...}, "notes": "..."}

`python -m harness run --submission=S --config=NAME` uses it; --hparams and --knobs given as well
override single keys of it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

from harness import store
from harness.spec import UserError
from harness.submissions import Submission


@dataclasses.dataclass(frozen=True)
class NamedConfig:
    name: str
    path: str
    workload: str
    source: str
    hparams: Any  # a mapping, or a list of mappings (one per phase)
    knobs: Mapping[str, Any]


def load_config(submission: Submission, name_or_path: str) -> NamedConfig:
    """The configuration `name_or_path` (a name in the submission's configs/ or a .json path)."""
    path = name_or_path if name_or_path.endswith(".json") else \
        os.path.join(submission.configs_dir, name_or_path + ".json")
    if not os.path.isfile(path):
        known = ", ".join(submission.config_names()) or "none"
        raise UserError(f"unknown config {name_or_path!r} for submission {submission.name} (known: {known}); "
                        "pass a name from its configs/ directory or a path to a .json file")
    try:
        with open(path) as f:
            raw = json.load(f)
    except json.JSONDecodeError as e:
        raise UserError(f"config {path}: cannot parse: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("workload"), str):
        raise UserError(f"config {path} must be a JSON object with a \"workload\" name and \"hparams\"")
    unknown = set(raw) - {"workload", "source", "hparams", "knobs", "notes"}
    if unknown:
        raise UserError(f"config {path}: unknown field(s) {', '.join(sorted(unknown))}")
    return NamedConfig(os.path.splitext(os.path.basename(path))[0], os.path.abspath(path), raw["workload"],
                       str(raw.get("source", "")), raw.get("hparams", {}), dict(raw.get("knobs", {})))


def merge_hparams(base: Any, override: Any) -> Any:
    """`override` on top of a config's hparams: keys of a mapping override every phase's value;
    a list (one mapping per phase) replaces the configuration's hparams entirely."""
    if not override:
        return base
    if isinstance(override, list):
        return override
    if isinstance(base, list):
        return [{**phase, **override} for phase in base]
    return {**base, **override}


def label(name: str, hparams: Any, knobs: Mapping[str, Any]) -> str:
    """How results name a run started from config `name` with `hparams` and `knobs` set on top:
    ``name``, then ``k=v`` pairs sorted by key (a per-phase list as JSON), then ``knobs:k=v``."""
    parts = [name]
    if isinstance(hparams, list):
        parts.append(json.dumps(hparams, sort_keys=True, separators=(",", ":")))
    elif hparams:
        parts.append(store.compact_pairs(hparams))
    if knobs:
        parts.append("knobs:" + ",".join(f"{k}={knobs[k]}" for k in sorted(knobs)))
    return " ".join(parts)
