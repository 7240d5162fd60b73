"""Loading submission modules by built-in name or path (the protocol's functions and defaults).

``M#D`` (two built-in names or paths joined by ``#``, e.g. ``adamw#nesterov`` or
``path/to/mine.py#sgd``) loads both and grafts them (submissions/lib/graft_protocol.py): hparams
``M.<name>``, ``D.<name>`` and ``partition``. ``A#B#C`` is ``(A#B)#C``. A grafted submission knows
its two children (a built-in grafted module names them in ``GRAFT_CHILDREN``), so that the
children's named configs apply to it (harness/configs.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

from harness import audit, submission_sources
from harness.errors import UserError
from harness.hparams import check_defaults

SUBMISSIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "submissions")


@dataclasses.dataclass(frozen=True)
class Submission:
    name: str
    path: str
    init: Callable[..., Any]
    update: Callable[..., Any]
    defaults: Mapping[str, Any]
    search_space: Mapping[str, Any] | None
    next_phase: Callable[..., Any] | None = None  # optional hook, see harness/spec.py
    diagnostics: Callable[[Any], Mapping[str, Any]] | None = None  # optional: state -> small arrays
    children: tuple[Submission, Submission] | None = None  # (M, D) of a grafted submission
    static_hparams: frozenset[str] = frozenset()  # declared static floats (harness/spec.py)
    check_hparams: Callable[..., None] | None = None  # optional: (hparams, ctx) -> None or UserError
    #: Hash of the code as loaded (source_hash); filled by load(): the row id of every run of it.
    source_hash: str = ""

    @property
    def configs_dir(self) -> str:
        """Named hyperparameter configurations: <submission dir>/configs/<name>.json."""
        return os.path.join(os.path.dirname(self.path), "configs")

    def config_names(self) -> list[str]:
        if not os.path.isdir(self.configs_dir):
            return []
        return sorted(os.path.splitext(f)[0] for f in os.listdir(self.configs_dir) if f.endswith(".json"))


def source_files(sub: Submission) -> list[str]:
    """The files a submission's code comes from: its module(s) (both sides of a graft, and the
    children a built-in graft module names) and every module of the submissions package they
    import, transitively (harness/submission_sources.py: only what it imports, so an edit of one
    lib module changes the ids of the submissions that use it and no others)."""
    files = set(sub.path.split(GRAFT_SEP))
    for child in sub.children or ():
        files.update(source_files(child))
    if GRAFT_SEP in sub.path:  # grafted here (load_grafted) by the code of GRAFT_PROTOCOL
        files.update(submission_sources.module_files(GRAFT_PROTOCOL, SUBMISSIONS_DIR))
    return submission_sources.source_files(sorted(files), SUBMISSIONS_DIR)


def source_hash(sub: Submission) -> str:
    """12 hex digits of sha256 over the contents of `source_files` (with their names relative to
    the submissions directory, or the basename for a user's file): an edited submission is another
    leaderboard row (harness/plan.RunPlan.config_id)."""
    h = hashlib.sha256()
    for path in source_files(sub):
        name = (os.path.relpath(path, SUBMISSIONS_DIR)
                if os.path.commonpath([path, SUBMISSIONS_DIR]) == SUBMISSIONS_DIR else os.path.basename(path))
        with open(path, "rb") as f:
            h.update(name.encode() + b"\0" + hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:12]


def builtin_names() -> list[str]:
    return sorted(d for d in os.listdir(SUBMISSIONS_DIR)
                  if os.path.isfile(os.path.join(SUBMISSIONS_DIR, d, "submission.py")))


def is_path(name_or_path: str) -> bool:
    """Whether `name_or_path` names a file or directory (else a built-in's name)."""
    return os.sep in name_or_path or name_or_path.endswith(".py")


def resolve_path(name_or_path: str) -> str:
    """A built-in name (submissions/<name>/submission.py), a .py file, or a directory holding one."""
    if not is_path(name_or_path):
        path = os.path.join(SUBMISSIONS_DIR, name_or_path, "submission.py")
        if os.path.isfile(path):
            return path
        raise UserError(f"unknown submission {name_or_path!r}: not a built-in ({', '.join(builtin_names())})"
                        " and not a path; pass --submission=path/to/module.py")
    path = name_or_path
    if os.path.isdir(path):
        path = os.path.join(path, "submission.py")
    if not os.path.isfile(path):
        raise UserError(f"submission file {path} does not exist; pass a built-in name "
                        f"({', '.join(builtin_names())}) or a path to a module defining init and update")
    return os.path.abspath(path)


def code_roots(paths: Iterable[str]) -> list[str]:
    """Where a submission's code lies, for harness/audit.py: the directory of each of its modules
    (a user's module may import helpers next to it), and for a built-in the whole submissions/
    directory (built-ins import submissions/lib and each other: nesterov imports sgd's module)."""
    return sorted({SUBMISSIONS_DIR if os.path.commonpath([p, SUBMISSIONS_DIR]) == SUBMISSIONS_DIR
                   else os.path.dirname(p) for p in paths})


def guard(sub: Submission, protected: Iterable[str | None] = ()) -> audit.Guard:
    """The audit guard of `sub` (harness/audit.py): `with loader.guard(plan.submission): ...`
    around code that runs the submission's code (its init, next_phase, the tracing of its update)."""
    return audit.guard(sub.name, code_roots(source_files(sub)), protected)


def _import(path: str) -> ModuleType:
    """Import the module at `path` under an audit guard (harness/audit.py).

    What is protected at import: the default locations (the targets file, every dataset's default
    or environment-variable location) and what the caller declared with `audit.protecting` (the
    entry point's --data_dir and --results): the loader is called before a run's paths reach the
    plan, so it takes them from the enclosing block, not from arguments.

    Failures are one-line UserErrors, a refusal of the guard as such (ContractViolation); sys.exit
    in the module is one too (SystemExit would end the harness silently, with the submission's exit
    code). A KeyboardInterrupt (or the harness's own interrupt, harness/interrupts.py) propagates:
    a Ctrl-C during the import is the user's, not the submission's fault.
    """
    module_name = "submission_" + os.path.splitext(os.path.relpath(path, "/"))[0].replace(os.sep, "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        with audit.guard(path, code_roots([path])):
            spec.loader.exec_module(module)
    except audit.ContractViolation:
        sys.modules.pop(module_name, None)
        raise
    except SystemExit as e:
        sys.modules.pop(module_name, None)
        raise audit.exit_error(path, "at import", e) from None
    except Exception as e:  # a user module failing to import is a user error, reported in one line
        sys.modules.pop(module_name, None)
        raise UserError(f"submission {path} failed to import: {type(e).__name__}: {e}") from None
    except BaseException:  # KeyboardInterrupt, harness.interrupts.Interrupted: not the module's fault
        sys.modules.pop(module_name, None)
        raise
    return module


GRAFT_SEP = "#"
#: The module that grafts two submissions loaded as M#D (load_grafted imports it).
GRAFT_PROTOCOL = "submissions.lib.graft_protocol"


def load(name_or_path: str) -> Submission:
    """Import a submission (or graft two, ``M#D``) and check it has init, update, DEFAULT_HPARAMS.

    The checks read the module's attributes, which may run its code (a module ``__getattr__``, a
    DEFAULT_HPARAMS of its own mapping class): they run under the audit guard too (see _import)."""
    if GRAFT_SEP in name_or_path:
        return load_grafted(name_or_path)
    path = resolve_path(name_or_path)
    with audit.guard(path, code_roots([path])):
        return _checked(path, _import(path))


def _checked(path: str, module: ModuleType) -> Submission:
    """The Submission of the module imported from `path`, once it has what the protocol needs."""
    missing = [attr for attr in ("init", "update") if not callable(getattr(module, attr, None))]
    if missing:
        raise UserError(f"submission {path} does not define {' and '.join(missing)}; a submission "
                        "defines init(params, hparams, ctx) and update(grads, state, params, hparams, ctx)")
    defaults = getattr(module, "DEFAULT_HPARAMS", None)
    if not isinstance(defaults, Mapping):
        got = "" if defaults is None else f" (it is a {type(defaults).__name__})"
        raise UserError(f"submission {path} does not define DEFAULT_HPARAMS as a dict of hyperparameters"
                        f"{got}; define DEFAULT_HPARAMS = {{name: default value}}")
    check_defaults(defaults, f"submission {path}")
    search_space = None
    space_path = os.path.join(os.path.dirname(path), "search_space.json")
    if os.path.exists(space_path):
        with open(space_path) as f:
            search_space = json.load(f)
    directory = os.path.basename(os.path.dirname(path))
    name = directory if os.path.basename(path) == "submission.py" else os.path.splitext(os.path.basename(path))[0]
    next_phase = getattr(module, "next_phase", None)
    if next_phase is not None and not callable(next_phase):
        raise UserError(f"submission {path}: next_phase must be a function "
                        "next_phase(state, params, hparams, ctx) -> state")
    diagnostics = getattr(module, "diagnostics", None)
    if diagnostics is not None and not callable(diagnostics):
        raise UserError(f"submission {path}: diagnostics must be a function "
                        "diagnostics(state) -> dict[str, jax.Array]")
    children_names = getattr(module, "GRAFT_CHILDREN", None)
    children = None
    if children_names is not None:
        m, d = (load(child) for child in children_names)
        children = (m, d)
    static: Any = getattr(module, "STATIC_HPARAMS", frozenset())
    if not isinstance(static, (set, frozenset, tuple, list)) or not set(static) <= set(defaults):
        raise UserError(f"submission {path}: STATIC_HPARAMS must be a set of names of DEFAULT_HPARAMS, "
                        f"got {static!r}")
    check = getattr(module, "check_hparams", None)
    if check is not None and not callable(check):
        raise UserError(f"submission {path}: check_hparams must be a function check_hparams(hparams, ctx)")
    loaded = Submission(name, path, module.init, module.update, dict(defaults), search_space, next_phase,
                        diagnostics, children, frozenset(static), check)
    return dataclasses.replace(loaded, source_hash=source_hash(loaded))


def load_grafted(spec_: str) -> Submission:
    """``M#D``: both children loaded as usual, grafted with hyperparameters namespaced M./D.

    The search space is D's, namespaced, and the graft's global learning-rate scalar (Agarwal et al.
    Sec. 4 and App. A.1.1: M's hyperparameters stay fixed).
    """
    from submissions.lib import graft_protocol  # the harness needs it only for `#`

    parts = spec_.split(GRAFT_SEP)
    if any(not p for p in parts):
        raise UserError(f"malformed grafted submission {spec_!r}: write M#D with two built-in names "
                        "or paths, e.g. --submission=adamw#sgd")
    current = load(parts[0])
    for part in parts[1:]:
        d = load(part)
        grafted = graft_protocol.combine(
            graft_protocol.Child(current.name, current.defaults, current.init, current.update,
                                 current.next_phase, current.static_hparams, current.check_hparams),
            graft_protocol.Child(d.name, d.defaults, d.init, d.update, d.next_phase, d.static_hparams,
                                 d.check_hparams))
        space = graft_protocol.namespaced_search_space(d.search_space) if d.search_space else None
        current = Submission(grafted.name, f"{current.path}{GRAFT_SEP}{d.path}", grafted.init,
                             grafted.update, grafted.defaults, space, grafted.next_phase,
                             grafted.diagnostics, (current, d), grafted.static_hparams,
                             grafted.check_hparams)
        current = dataclasses.replace(current, source_hash=source_hash(current))
    return current
