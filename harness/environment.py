"""What a run records about where it ran: versions, devices, host, git revision."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess

import jax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def environment() -> dict[str, object]:
    devices = jax.devices()
    versions: dict[str, str | None] = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": platform.python_version(), **versions,
        "platform": devices[0].platform, "device_kind": devices[0].device_kind,
        "device_count": len(devices), "process_count": jax.process_count(),
        "host": socket.gethostname(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
    }


def git_revision() -> str | None:
    """HEAD of the suite's repository, with '+dirty' when the work tree has changes; None outside git."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")
