"""Named hyperparameter configurations of a submission: submissions/<name>/configs/<config>.json.

A configuration reproduces a setting from a paper (Nado et al. Table 6 Configuration A, ...)::

    {"workload": "imagenet_resnet50", "source": "Nado et al. 2021, Table 6, Configuration A",
     "hparams": {...} or [{phase 1}, {phase 2}], "knobs": {...}, "notes": "..."}

The hparams may declare a learning-rate scaling rule (harness/lr_scaling.py: "lr_scaling",
"lr_reference_batch_size"), so that one config covers a paper's batch-size study with
--batch_size (lamb --config=you2019_table4 --batch_size=512: You et al. Table 4's column 512).

`python -m harness run --submission=S --config=NAME` uses it; --hparams and --knobs given as well
override single keys of it. A file whose fields have other JSON types ("knobs": [1, 2], an hparam
that is null or a list, an unknown field) or whose hparams the submission does not have (or of
another type than its default) is a one-line UserError naming the file and the key.

A grafted submission M#D (harness/submission_loader.py) without a config of that name takes its
children's: M's configs/NAME.json with every hparam prefixed ``M.``, D's prefixed ``D.`` (either or
both; they must name the same workload and agree on knobs). So ``--submission=adamw#sgd
--config=pydocs_bert`` runs AdamW's tuned pydocs_bert setting as M.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from harness import json_files, lr_scaling
from harness.errors import UserError
from harness.formatting import compact_hparams, compact_pairs
from harness.hparams import TYPES, validate_hparams
from harness.submission_loader import Submission

FIELDS = frozenset({"workload", "source", "hparams", "knobs", "notes"})


@dataclasses.dataclass(frozen=True)
class NamedConfig:
    name: str
    path: str
    workload: str
    source: str
    hparams: Any  # a mapping, or a list of mappings (one per phase)
    knobs: Mapping[str, Any]


def _read(path: str) -> NamedConfig:
    """The config file at `path`, its fields checked for their JSON types (UserError naming the
    file and the field or key): what the hparams mean for a submission is checked by load_config."""
    raw = json_files.read(path, f"config {path}")
    if not isinstance(raw, dict) or not isinstance(raw.get("workload"), str):
        raise UserError(f"config {path} must be a JSON object with a \"workload\" name and \"hparams\"")
    unknown = set(raw) - FIELDS
    if unknown:
        raise UserError(f"config {path}: unknown field(s) {', '.join(sorted(unknown))}; "
                        f"the fields of a config are {', '.join(sorted(FIELDS))}")
    for field in ("source", "notes"):
        if not isinstance(raw.get(field, ""), str):
            raise UserError(f"config {path}: \"{field}\" must be a string, got {json.dumps(raw[field])}")
    hparams = raw.get("hparams", {})
    _check_hparams_field(path, hparams)
    knobs = raw.get("knobs", {})
    _check_knobs_field(path, knobs)
    return NamedConfig(os.path.splitext(os.path.basename(path))[0], os.path.abspath(path), raw["workload"],
                       raw.get("source", ""), hparams, dict(knobs))


def _check_hparams_field(path: str, hparams: Any) -> None:
    """UserError unless "hparams" is an object, or a list of objects (one per phase), whose
    values are each a bool, number or string (null, lists and objects are no hyperparameter)."""
    phases: list[tuple[int | None, dict[str, Any]]]
    if isinstance(hparams, dict):
        phases = [(None, hparams)]
    elif isinstance(hparams, list) and hparams and all(isinstance(h, dict) for h in hparams):
        phases = list(enumerate(hparams))
    else:
        raise UserError(f"config {path}: \"hparams\" must be a JSON object of hyperparameters, or a list "
                        f"of such objects with one per phase; got {json.dumps(hparams)[:60]}")
    for k, mapping in phases:
        where = "\"hparams\"" if k is None else f"\"hparams\"[{k}]"
        for key, value in mapping.items():
            if not isinstance(value, TYPES):
                raise UserError(f"config {path}: {where} key {key!r} is {json.dumps(value)[:60]}; a "
                                "hyperparameter is a bool, number or string (per-phase values: make "
                                "\"hparams\" a list of objects, one per phase)")


def _check_knobs_field(path: str, knobs: Any) -> None:
    """UserError unless "knobs" is an object of knob names to numbers."""
    if not isinstance(knobs, dict):
        raise UserError(f"config {path}: \"knobs\" must be a JSON object of knob names to numbers, "
                        f"got {json.dumps(knobs)[:60]}")
    for key, value in knobs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config {path}: \"knobs\" key {key!r} is {json.dumps(value)[:60]}; "
                            "a knob is a number")


def _check_against_defaults(named: NamedConfig, submission: Submission) -> None:
    """UserError naming the config file(s) for an hparam `submission` does not have or of another
    type than its default (harness.hparams.validate_hparams, which the run repeats on the merge
    with --hparams; here the error can still name the file)."""
    for mapping in named.hparams if isinstance(named.hparams, list) else [named.hparams]:
        try:
            validate_hparams(lr_scaling.parse(mapping)[0], submission.defaults, submission.name)
        except UserError as e:
            raise UserError(f"config {named.path}: {e}") from None


def _find(submission: Submission, name: str) -> NamedConfig | None:
    """The submission's own config `name`, else its children's (grafts, prefixed M./D.), else None."""
    path = os.path.join(submission.configs_dir, name + ".json")
    if os.path.isfile(path):
        return _read(path)
    if submission.children is None:
        return None
    from submissions.lib.graft_protocol import PREFIX_D, PREFIX_M, SEP

    found = [(prefix, c) for prefix, child in zip((PREFIX_M, PREFIX_D), submission.children)
             if (c := _find(child, name)) is not None]
    if not found:
        return None
    workloads = {c.workload for _, c in found}
    if len(workloads) > 1:
        raise UserError(f"config {name} of the children of {submission.name} names different workloads "
                        f"({', '.join(sorted(workloads))}); pass --hparams with M./D. keys instead")
    knobs: dict[str, Any] = {}
    for _, c in found:
        for k, v in c.knobs.items():
            if knobs.setdefault(k, v) != v:
                raise UserError(f"config {name} of the children of {submission.name} sets knob {k} to "
                                f"{knobs[k]} and {v}; pass --knobs to choose")
    return NamedConfig(name, "; ".join(c.path for _, c in found), found[0][1].workload,
                       "; ".join(f"{prefix}: {c.source}" for prefix, c in found),
                       _prefixed([(prefix + SEP, c.hparams) for prefix, c in found]), knobs)


def _prefixed(parts: Sequence[tuple[str, Any]]) -> Any:
    """The children's hparams with their prefixes, in one mapping; one mapping per phase when any
    child's config is a per-phase list (the mappings of the others then apply to every phase). A
    learning-rate rule (harness/lr_scaling.py) keeps its unprefixed keys: it applies to the graft."""
    lengths = {len(h) for _, h in parts if isinstance(h, list)}
    if len(lengths) > 1:
        raise UserError("the children's configs give per-phase hparams for different numbers of phases")

    def phase(k: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for prefix, h in parts:
            mapping = h[k] if isinstance(h, list) and k is not None else h
            # a learning-rate rule is the graft's, not a child's: it scales every rate, unprefixed
            for key, v in mapping.items():
                if key in lr_scaling.KEYS and out.setdefault(key, v) != v:
                    raise UserError(f"the children's configs declare {key} {out[key]!r} and {v!r}; pass "
                                    f"--hparams with {key} to choose")
            out.update({(key if key in lr_scaling.KEYS else prefix + key): v for key, v in mapping.items()})
        return out

    return [phase(k) for k in range(lengths.pop())] if lengths else phase(None)


def known_names(submission: Submission) -> list[str]:
    """Config names usable with `submission`: its own, and (grafts) its children's."""
    names = set(submission.config_names())
    for child in submission.children or ():
        names.update(known_names(child))
    return sorted(names)


def load_config(submission: Submission, name_or_path: str) -> NamedConfig:
    """The configuration `name_or_path` (a name in the submission's configs/, or in its children's
    for a graft, or a .json path), its hparams known to the submission and of their defaults' types
    (UserError naming the file)."""
    if name_or_path.endswith(".json"):
        if not os.path.isfile(name_or_path):
            raise UserError(f"config file {name_or_path} does not exist; pass a config name of "
                            f"{submission.name} ({', '.join(known_names(submission)) or 'none'}) or a path")
        found: NamedConfig | None = _read(name_or_path)
    else:
        found = _find(submission, name_or_path)
    if found is None:
        known = ", ".join(known_names(submission)) or "none"
        raise UserError(f"unknown config {name_or_path!r} for submission {submission.name} (known: {known}); "
                        "pass a name from its configs/ directory or a path to a .json file")
    _check_against_defaults(found, submission)
    return found


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


def label(name: str, hparams: Mapping[str, Any] | Sequence[Mapping[str, Any]], knobs: Mapping[str, Any]
          ) -> str:
    """How results name a run started from config `name` with `hparams` and `knobs` set on top:
    ``name``, then the hparams as harness.formatting.compact_hparams, then ``knobs:k=v``."""
    parts = [name]
    if hparams:
        parts.append(compact_hparams(hparams))
    if knobs:
        parts.append("knobs:" + compact_pairs(knobs))
    return " ".join(parts)
