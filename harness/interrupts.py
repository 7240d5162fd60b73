"""SIGINT and SIGTERM end a run as `interrupted`, never as a traceback or a run left `running`.

SIGTERM is what `timeout`, `docker stop`, `kill` and SLURM send; Python's default for it ends the
process at once, with no chance to record anything. `install()` (called by every entry point,
harness/cli.py) makes both signals raise `Interrupted` in the main thread, which the runner catches
to record the run as interrupted (with the steps done and the latest checkpoint) before the entry
point exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM) and one line on stderr.

Inside `deferred()` (XLA compilation), a signal is remembered and raised when the block ends:
interrupting JAX's compiler half-way segfaulted once. A second signal during the block raises at once.

A signal is also latched, and `check()` raises it again: Python runs a signal handler between any
two bytecodes, also inside a `__del__` or a weakref callback, where an exception is printed and
swallowed ("Exception ignored in ..."). Seen: a SIGTERM raised inside TensorFlow's
ConcreteFunctionGarbageCollector.__del__ was lost and the study went on training. The runner calls
`check()` at every step, so a swallowed interrupt still ends the run within one step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: The exit codes of an interrupted entry point: 128 + the signal number.
EXIT_CODES = frozenset(128 + s for s in SIGNALS)


class Interrupted(BaseException):
    """The process received SIGINT or SIGTERM. A BaseException, like KeyboardInterrupt: code that
    catches Exception (a submission's, a library's) does not swallow it."""

    def __init__(self, signum: int, detail: str = "") -> None:
        super().__init__(signum, detail)
        self.signum, self.detail = signum, detail

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        return f"interrupted by {name}" + (f": {self.detail}" if self.detail else "")

    def with_detail(self, detail: str) -> Interrupted:
        return Interrupted(self.signum, detail)


class _State:
    deferring = 0
    pending: int | None = None  # received inside deferred(), not raised yet
    received: int | None = None  # the first signal received (latched: the process is ending)


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    del frame
    if _state.received is None:
        _state.received = signum
    if _state.deferring and _state.pending is None:
        _state.pending = signum
        return
    raise Interrupted(signum)


def install() -> None:
    """Make SIGINT and SIGTERM raise Interrupted (main thread only; elsewhere a no-op); forget a
    signal latched by an earlier entry point of this process (tests run several)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _state.received = _state.pending = None
    for s in SIGNALS:
        signal.signal(s, _handler)


def uninstall() -> None:
    """Restore Python's default handlers and forget any latched signal (tests)."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _state.received = _state.pending = None


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a signal until the block ends, then raise it (a second one raises at once)."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
        if not _state.deferring and _state.pending is not None:
            signum, _state.pending = _state.pending, None
            raise Interrupted(signum)


def check() -> None:
    """Raise Interrupted if a signal was received outside deferred() (its first raise may have been
    swallowed by a __del__, module docstring); a no-op otherwise."""
    if _state.received is not None and not _state.deferring:
        raise Interrupted(_state.received)


def as_interrupted(error: BaseException) -> Interrupted | None:
    """`error` as an Interrupted if it is one (a KeyboardInterrupt is SIGINT), else None."""
    if isinstance(error, Interrupted):
        return error
    if isinstance(error, KeyboardInterrupt):
        return Interrupted(signal.SIGINT)
    return None
