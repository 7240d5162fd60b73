"""The submission contract, enforced where Python can: submission code may not touch the datasets,
the results database or the targets file.

A submission sees its data only as the batches and gradients the harness hands it. Without a
check, a submission could read the test labels at import, or the targets file, and tune itself to
them. While the harness runs submission code (imports it, calls its init or next_phase on the host,
traces its update), it holds a `guard`; harness/submission_loader.py guards every import and gives
the guard of a loaded submission:

    with submission_loader.guard(sub):    # audit.guard(name, code roots, protected=())
        state = sub.init(params, hparams, ctx)    # or jax.jit(step).lower(...), next_phase(...)

Inside a guard, an audit hook (PEP 578, `sys.addaudithook`) refuses, with a one-line
`ContractViolation` (a `UserError`) naming the submission, the file and the submission's line:

* opening a protected path (the `open` event: `open`, `io.open`, `os.open`, `gzip.open`,
  `numpy.load`/`fromfile`, `pathlib`, ... every opener written in Python or calling `open`),
  connecting to it with `sqlite3`, listing a protected directory (`os.listdir`, `os.scandir`,
  `glob`), linking, renaming, removing or truncating a protected file (a hard link or a rename would
  give the file another name; a symbolic link is seen through: paths are compared resolved), and
  copying it with `shutil`;
* starting a process (`subprocess`, `os.system`, `os.exec*`, `os.posix_spawn`, `os.spawn*`): a
  process would read the files outside this hook's sight.

*Only when submission code asked for it*: the hook walks the Python stack of the event and refuses
it when a frame's code is the submission's (a file under one of the guard's code roots, except the
suite's own packages harness/, workloads/, scoring/ and the Python installation with its
site-packages). The harness's own frames (its data loader, the results store, workloads/targets.py)
may open the same files inside a guard; a submission calling the harness's data loader is refused
(its frame is on the stack). A submission's own directory is not protected, even inside a
protected directory (a --data_dir above it): it reads its configs and imports its helpers.

Protected paths (`protected_paths`): the targets file and every dataset's location as the data
modules look it up without a --data_dir (their environment variables, else their defaults), plus
what the guard is given and what an enclosing `protecting(...)` declares (the run's --data_dir and
--results, known to the entry point before the submission is imported); a protected file covers its
SQLite side files (-wal, -shm, -journal).

A refused call raises inside the submission, which could catch it (a bare `except`) and go on. So
the hook also records the refusal in the guard, and the guard's `__exit__` raises it when it did
not propagate (or when another exception took its place): the harness reports the refusal either
way.

Installation: one process-wide hook, added at the first guard (an audit hook cannot be removed:
none is added at import, and the hook returns at once while no guard is active). Guards are
process-wide, not per context or thread: a thread the submission starts runs its code on a stack
the hook can read, and is checked while any guard is active.

Cost (measured on this machine's 2 CPU cores, Python 3.11): outside a guard, one Python call per
audit event (os.open of a file: 0.86-0.88 µs with the idle hook, 0.86-0.87 µs without); inside a
guard, a path check per file opened (abspath and realpath: 8-9 µs per os.open). Importing nesterov
and tracing its update: 11.9-12.3 ms inside a guard, 11.6-12.0 ms outside; a cold `import
flax.linen, optax, scipy.stats` (752 files opened): 0.56-0.58 s inside, 0.61-0.90 s outside: noise
(tests/test_audit.py::test_guard_costs_little, test_open_under_a_guard_costs_microseconds).

What cannot be enforced in Python (the guard is a tripwire against the easy ways, not a sandbox):

* Reading the clock: `time.time`, `perf_counter`, `datetime.now` raise no audit event. (In a traced
  update a clock read is a constant of the compiled program; it changes nothing at run time unless
  the submission uses a host callback.)
* Host callbacks (`jax.pure_callback`, `io_callback`, `debug.callback`) in the update run when the
  compiled step runs, outside the guards of tracing: the runner holds the submission's guard while
  it trains (harness/runner.py), so they are checked, but from XLA's callback threads only while
  their Python frames show the submission's code.
* Code in compiled extensions opening files by itself (`tf.io.gfile`, `tf.data`, `ctypes` calls of
  libc's `open`): no audit event. ctypes itself is not refused (libraries load native code with it).
* Threads: Python 3.11 has no audit event for starting one; a thread whose target is a library
  function (`threading.Thread(target=shutil.copyfile, ...)`) has no submission frame on its stack,
  and a thread still running after the guards end is not checked.
* Files opened before the guard (an open descriptor inherited or kept from earlier), memory of the
  process (the harness's data arrays are reachable from Python: `gc.get_objects()`), the network.
* Code that targets the harness itself: Python has no protection between code in one process; a
  submission can switch this check off by editing this module's state, and a determined adversary
  can read anything the process can.
"""

from __future__ import annotations

import dataclasses
import os
import site
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

from harness.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The suite's own code: never a submission's, even when a user's module lies in the repository.
SUITE_PACKAGES = tuple(os.path.join(REPO, p) for p in ("harness", "workloads", "scoring"))
#: SQLite's side files of a database: protected with it.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
#: audit event -> the positions of its path arguments (the events of the module docstring).
PATH_EVENTS: dict[str, tuple[int, ...]] = {
    "open": (0,), "os.listdir": (0,), "os.scandir": (0,), "sqlite3.connect": (0,),
    "os.link": (0, 1), "os.symlink": (0, 1), "os.rename": (0, 1), "os.remove": (0,), "os.rmdir": (0,),
    "os.truncate": (0,), "shutil.copyfile": (0, 1), "shutil.copytree": (0, 1), "shutil.rmtree": (0,),
}
#: What a refused event did, for the message.
VERBS = {"open": "opened", "os.listdir": "listed", "os.scandir": "listed", "sqlite3.connect": "opened",
         "os.link": "linked", "os.symlink": "linked", "os.rename": "renamed", "os.remove": "removed",
         "os.rmdir": "removed", "os.truncate": "truncated", "shutil.copyfile": "copied",
         "shutil.copytree": "copied", "shutil.rmtree": "removed"}
PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn"})
_FILES_RULE = ("a submission must not read or touch the datasets, the results database or the targets "
               "file (harness/audit.py)")
_PROCESS_RULE = "a submission must not start processes: they would read files unchecked (harness/audit.py)"


class ContractViolation(UserError):
    """Submission code did what the contract forbids (this module's docstring); the harness refused it."""


def exit_error(name: str, during: str, error: SystemExit) -> UserError:
    """The one-line error for a submission that called sys.exit (`during`: e.g. "at import").

    SystemExit is a BaseException: uncaught, it would end the harness with the submission's exit
    code and no output (exit 0 looks like success to a script)."""
    return UserError(f"submission {name} called sys.exit({error.code!r}) {during}; a submission must "
                     "not exit the process: raise an exception to report a failure")


# --- paths --------------------------------------------------------------------------------------


def _absolute(event: str, value: Any) -> tuple[str, ...]:
    """The path argument `value` of an audit event as normalised absolute paths: none for a file
    descriptor, None or sqlite3's ':memory:'; for sqlite3 a `file:` URI also as the path it names
    (the event does not say whether uri=True, so both readings are checked)."""
    if isinstance(value, int) or value is None:
        return ()
    try:
        text = os.fsdecode(value)
    except TypeError:
        return ()
    found = [text]
    if event == "sqlite3.connect" and text.startswith("file:"):  # file:path?query, percent-escaped
        uri = urllib.parse.unquote(text[len("file:"):].split("?", 1)[0].split("#", 1)[0])
        if uri.startswith("//"):  # file://host/path: the host is empty or localhost
            uri = "/" + uri[2:].split("/", 1)[-1]
        found.append(uri)
    return tuple(os.path.abspath(t) for t in found if t and t != ":memory:")


def _forms(path: str) -> tuple[str, ...]:
    """A path as given (absolute) and resolved (symbolic links followed; as given if it cannot be)."""
    absolute = os.path.abspath(path)
    try:
        resolved = os.path.realpath(absolute)
    except (OSError, ValueError):  # a NUL byte, a loop: the call itself will fail
        return (absolute,)
    return (absolute,) if resolved == absolute else (absolute, resolved)


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root if root.endswith(os.sep) else root + os.sep)


def _covers(root: str, path: str) -> bool:
    """Whether `path` is `root`, inside it, or one of its SQLite side files."""
    return _within(path, root) or any(path == root + s for s in SQLITE_SIDE_FILES)


def _covered(path: str, roots: tuple[str, ...]) -> bool:
    return any(_covers(root, path) for root in roots)


def protected_paths(*extra: str | None) -> list[str]:
    """The targets file and every dataset's location as its data module looks it up without a
    --data_dir (environment variable, else default; the same lookup, `lookup_dir`), plus `extra`
    (None skipped)."""
    from workloads import targets
    from workloads.data import fashion_mnist, imagenet, pretraining_records, pydocs
    from workloads.data.common import lookup_dir

    found = [targets.TARGETS_FILE,
             lookup_dir(None, fashion_mnist.ENV_VAR, fashion_mnist.DEFAULT_DIR),
             lookup_dir(None, pydocs.SOURCE_ENV_VAR, pydocs.DEFAULT_SOURCE_DIR),
             pydocs.cache_root(None),
             lookup_dir(None, pretraining_records.ENV_VAR),
             lookup_dir(None, imagenet.ENV_VAR), *extra]
    return [p for p in found if p]


def _roots(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(form for p in paths for form in _forms(p)))


def _installation() -> tuple[str, ...]:
    """The Python installation and its site-packages: library code, never a submission's."""
    dirs = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *site.getsitepackages()]
    user_site = site.getusersitepackages()
    return _roots([*dirs, *([user_site] if isinstance(user_site, str) else [])])


# --- the state the hook reads ------------------------------------------------------------------


@dataclasses.dataclass
class _State:
    """Process-wide (module doc: threads); replaced, never mutated, under `lock`, read by the hook
    without it (reading an attribute is atomic)."""

    guards: tuple[Guard, ...] = ()
    declared: tuple[str, ...] = ()  # roots of the enclosing protecting() blocks
    installed: bool = False
    not_submission: tuple[str, ...] = ()  # the suite's packages and the installation (on install)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


_state = _State()


def _install() -> None:
    """Add the hook once per process (it cannot be removed; it does nothing without a guard)."""
    with _state.lock:
        if _state.installed:
            return
        _state.not_submission = _roots([*SUITE_PACKAGES, *_installation()])
        sys.addaudithook(_hook)
        _state.installed = True


@contextmanager
def protecting(*paths: str | None) -> Iterator[None]:
    """Protect `paths` (None skipped: e.g. an unset --data_dir) from every guard, for the block.

    For the entry point, which knows the run's --data_dir and --results before the submission is
    imported: `with audit.protecting(fv.data_dir, fv.results): ...`."""
    added = _roots(p for p in paths if p)
    with _state.lock:  # blocks nest: the end of one restores what was declared before it
        before = _state.declared
        _state.declared = before + added
    try:
        yield
    finally:
        with _state.lock:
            _state.declared = before


class Guard:
    """While entered, submission code under `code` may not touch the protected paths (module doc).

    `name` names the submission in the error; `code`: its files or directories (everything under
    them except the suite's packages and the Python installation); `protected`: paths protected on
    top of `protected_paths()` and the enclosing `protecting` blocks'."""

    def __init__(self, name: str, code: Iterable[str], protected: Iterable[str | None] = ()) -> None:
        self.name = name
        self.code = _roots(code)
        self._given = tuple(protected)
        self.protected: tuple[str, ...] = ()
        self.violations: list[ContractViolation] = []
        self._owns_cache: dict[str, bool] = {}

    def owns(self, filename: str) -> bool:
        """Whether code of `filename` (a frame's co_filename) is the submission's."""
        owned = self._owns_cache.get(filename)
        if owned is None:
            owned = (os.path.isabs(filename) and _covered(filename, self.code)
                     and not _covered(filename, _state.not_submission))
            self._owns_cache[filename] = owned
        return owned

    def protects(self, path: str, declared: tuple[str, ...]) -> bool:
        """Whether `path` is protected from this guard's submission: under a protected root, and
        not in the submission's own directory when that root holds it (a --data_dir above the
        submission's directory leaves it its own files; a protected file inside it stays protected)."""
        return any(_covers(root, path) and not any(_within(c, root) and _within(path, c) for c in self.code)
                   for root in (*self.protected, *declared))

    def submission_frame(self, frame: FrameType | None) -> FrameType | None:
        """The innermost frame of the submission's code on the stack from `frame` outwards."""
        while frame is not None:
            if self.owns(frame.f_code.co_filename):
                return frame
            frame = frame.f_back
        return None

    def refuse(self, frame: FrameType, what: str, rule: str) -> ContractViolation:
        """Record and return the refusal of `what` asked for by the submission's `frame`."""
        where = f"{os.path.basename(frame.f_code.co_filename)} line {frame.f_lineno}"
        violation = ContractViolation(f"submission {self.name} {what} ({where}): {rule}")
        self.violations.append(violation)
        return violation

    def __enter__(self) -> Guard:
        _install()
        self.protected = _roots(protected_paths(*self._given))
        with _state.lock:
            _state.guards = (*_state.guards, self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with _state.lock:
            _state.guards = tuple(g for g in _state.guards if g is not self)
        if self.violations and not isinstance(exc, ContractViolation):
            first = self.violations[0]
            if exc is None or isinstance(exc, Exception):  # an interrupt (BaseException) goes on
                went_on = "; the submission went on (it caught the refusal, or it ran in a thread)"
                raise ContractViolation(f"{first}{went_on}" if exc is None else str(first)) from None


def guard(name: str, code: Iterable[str], protected: Iterable[str | None] = ()) -> Guard:
    """A `Guard` (the one-line `with` around submission code)."""
    return Guard(name, code, protected)


# --- the hook -----------------------------------------------------------------------------------


def _hook(event: str, args: tuple[Any, ...]) -> None:
    """The audit hook: nothing unless a guard is active and the event is one this module checks."""
    guards = _state.guards
    if not guards:
        return
    check = _CHECKS.get(event)
    if check is not None:
        check(event, args, guards)


def _check_path(event: str, args: tuple[Any, ...], guards: tuple[Guard, ...]) -> None:
    """Refuse a path event on a protected path asked for by a guard's submission code."""
    declared = _state.declared
    for i in PATH_EVENTS[event]:
        for path in _absolute(event, args[i]) if i < len(args) else ():
            forms = _forms(path)
            for g in guards:
                if not any(g.protects(f, declared) for f in forms):
                    continue
                frame = g.submission_frame(sys._getframe(2))  # 0: here, 1: _hook, 2: the caller
                if frame is not None:
                    raise g.refuse(frame, f"{VERBS[event]} {path}", _FILES_RULE)


def _check_process(event: str, args: tuple[Any, ...], guards: tuple[Guard, ...]) -> None:
    for g in guards:
        frame = g.submission_frame(sys._getframe(2))
        if frame is not None:
            raise g.refuse(frame, f"started a process ({_command(args)[:120]})", _PROCESS_RULE)


def _command(args: tuple[Any, ...]) -> str:
    """The command line of a process event: its argument list (subprocess, exec, spawn), else its
    command string (os.system)."""
    argv = next((a for a in args if isinstance(a, (list, tuple))), None)
    if argv is not None:
        return " ".join(os.fsdecode(a) if isinstance(a, (str, bytes)) else str(a) for a in argv)
    text = next((a for a in args if isinstance(a, (str, bytes))), "")
    return os.fsdecode(text)


_CHECKS: dict[str, Callable[[str, tuple[Any, ...], tuple[Guard, ...]], None]] = {
    **{event: _check_path for event in PATH_EVENTS}, **{event: _check_process for event in PROCESS_EVENTS}}
