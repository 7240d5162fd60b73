"""Which process a `running` run belongs to, and whether that process is gone.

A run killed by SIGKILL (or a machine that lost power) cannot record that it ended: its row stays
`running`. Every run records its host, pid and the process's start time (the pid alone is reused by
the kernel); readers (harness/store.py) show a `running` run whose process is gone as `interrupted`.
Only a process on this host can be checked: a run of another host stays `running` until that host
resumes or finishes it (a multi-host study's readers run where its runs do, or see it so).
"""

from __future__ import annotations

import dataclasses
import socket

import psutil  # the process start time portably (Linux /proc, macOS sysctl)

#: Seconds within which two start times are the same process (psutil rounds to clock ticks).
START_TOLERANCE = 1.0


@dataclasses.dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    started: float  # unix time the process started

    def is_gone(self) -> bool | None:
        """True when this process no longer runs (its pid is free or another process's), False when
        it still runs, None when it is on another host (unknown here)."""
        if self.host != socket.gethostname():
            return None
        try:
            started = psutil.Process(self.pid).create_time()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return True
        except psutil.AccessDenied:  # it exists, under another user
            return False
        return abs(started - self.started) > START_TOLERANCE


def current() -> ProcessIdentity:
    """This process."""
    return ProcessIdentity(socket.gethostname(), psutil.Process().pid, psutil.Process().create_time())
