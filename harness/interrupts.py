"""SIGINT and SIGTERM end a run as `interrupted`, never as a traceback or a run left `running`.

SIGTERM is what `timeout`, `docker stop`, `kill` and SLURM send; Python's default for it ends the
process at once, with no chance to record anything. `install()` (called by every entry point,
harness/cli.py) makes both signals raise `Interrupted` in the main thread, which the runner catches
to record the run as interrupted (with the steps done and the latest checkpoint) before the entry
point exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM) and one line on stderr.

Inside `deferred()` (XLA compilation), a signal is remembered and raised when the block ends:
interrupting JAX's compiler half-way segfaulted once. A second signal during the block raises at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


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
    pending: int | None = None


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    del frame
    if _state.deferring and _state.pending is None:
        _state.pending = signum
        return
    raise Interrupted(signum)


def install() -> None:
    """Make SIGINT and SIGTERM raise Interrupted (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for s in SIGNALS:
        signal.signal(s, _handler)


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


def as_interrupted(error: BaseException) -> Interrupted | None:
    """`error` as an Interrupted if it is one (a KeyboardInterrupt is SIGINT), else None."""
    if isinstance(error, Interrupted):
        return error
    if isinstance(error, KeyboardInterrupt):
        return Interrupted(signal.SIGINT)
    return None
