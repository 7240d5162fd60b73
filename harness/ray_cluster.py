"""Where `--ray` runs, and what each Ray worker process is given.

`--ray` (no address) starts a local Ray cluster in this process, stopped when the command ends;
`--ray=auto` joins the cluster that `ray start --head` started on this machine (or RAY_ADDRESS);
`--ray=HOST:PORT` joins the one whose head listens there (with Ray's token authentication, which
`ray start` turns on: RAY_AUTH_MODE=token and the head's token, as Ray's guide says). An address
where nothing answers is a one-line error at once (Ray itself would wait minutes for it).

A worker process gets, through Ray's runtime environment: JAX's persistent compilation cache in a
directory shared by the workers of a machine (or of every machine, on a shared filesystem), so that
a second worker loads the compiled steps instead of compiling them; and, with one CPU per run, one
XLA compute thread (XLA would otherwise start a thread per core of the machine in every worker).

Only `--ray` imports this module's Ray functions; RaySettings imports nothing of Ray.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import threading
import warnings
from collections.abc import Iterator
from typing import Any

from harness.errors import UserError

#: `--ray` without an address: start a local cluster.
LOCAL = "local"
#: Seconds to wait for a TCP connection to a given HOST:PORT before calling it unreachable.
CONNECT_TIMEOUT = 5.0
#: XLA's flags for one compute thread per worker (Eigen's thread pool off, one intra-op thread).
ONE_THREAD_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def default_compilation_cache() -> str:
    """Where workers keep JAX's compilation cache unless --ray_compilation_cache says."""
    return os.path.join(os.path.expanduser("~"), ".cache", "largebatch-bench", "jax-compilation-cache")


@dataclasses.dataclass(frozen=True)
class RaySettings:
    """What `--ray`, `--ray_workers`, `--ray_cpus` and `--ray_compilation_cache` asked for."""

    address: str = LOCAL  # LOCAL, "auto" or HOST:PORT
    workers: int | None = None  # None: as many as the cluster's resources hold (at most one per run)
    cpus_per_run: int = 1
    compilation_cache: str = dataclasses.field(default_factory=default_compilation_cache)

    def check(self) -> None:
        """UserError for bad values, and for an address where nothing answers."""
        if self.workers is not None and self.workers < 1:
            raise UserError(f"--ray_workers must be >= 1, got {self.workers}")
        if self.cpus_per_run < 1:
            raise UserError(f"--ray_cpus must be >= 1 (CPUs per run), got {self.cpus_per_run}")
        if not self.address:
            raise UserError("--ray= needs an address: --ray (a local cluster), --ray=auto or --ray=HOST:PORT")
        check_reachable(self.address)


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a HOST:PORT address, None for another form (auto, ray://...)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or "/" in address:
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str) -> None:
    """UserError unless something accepts connections at a HOST:PORT address (Ray's own connect
    retries for minutes before it gives up)."""
    hp = _host_port(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=CONNECT_TIMEOUT):
            pass
    except OSError as e:
        raise UserError(f"--ray={address}: no Ray cluster answers there ({e.strerror or e}); start one "
                        "with `ray start --head` and pass the address it prints, or --ray for a local cluster"
                        ) from None


@contextlib.contextmanager
def session(settings: RaySettings) -> Iterator[None]:
    """Connected to the cluster of `settings` (a local one started for the block) for the block."""
    import ray

    settings.check()
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    handlers = _signal_handlers()
    try:
        with warnings.catch_warnings():
            # Ray starts its processes with fork + exec, which JAX's warning about fork does not concern.
            warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
            if settings.address == LOCAL:
                cpus = max(os.cpu_count() or 1, (settings.workers or 1) * settings.cpus_per_run)
                # "local": a new cluster, never one found on the machine (RAY_ADDRESS, ray start)
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
            else:
                ray.init(address=settings.address, **quiet)
    except ConnectionError as e:
        hint = ("; a cluster of `ray start` uses token authentication: set RAY_AUTH_MODE=token here, with its "
                "token in ~/.ray/auth_token or RAY_AUTH_TOKEN" if _host_port(settings.address) else "")
        raise UserError(f"--ray={settings.address}: {' '.join(str(e).split())}{hint}") from None
    finally:
        _restore(handlers)
    try:
        yield
    finally:
        ray.shutdown()


def _signal_handlers() -> dict[int, Any]:
    """This process's SIGINT and SIGTERM handlers (the main thread's; none elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}


def _restore(handlers: dict[int, Any]) -> None:
    """Put `handlers` back: ray.init replaces SIGTERM's with a crash report of Ray's, which would
    end the command as a crash instead of as interrupted (harness/interrupts.py)."""
    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)


def accelerator() -> tuple[str, int, int] | None:
    """What a run takes besides CPUs on this cluster: ("GPU", 1, GPUs in all) where it has GPUs;
    ("TPU", a host's TPU chips, TPU hosts) where it has TPUs (a run on a TPU host uses all of its
    chips); None on CPUs only."""
    import ray

    resources = ray.cluster_resources()
    if resources.get("GPU", 0) > 0:
        return "GPU", 1, int(resources["GPU"])
    if resources.get("TPU", 0) > 0:
        hosts = [n["Resources"]["TPU"] for n in ray.nodes() if n.get("Alive") and n["Resources"].get("TPU")]
        return "TPU", int(max(hosts)), len(hosts)
    return None


def resources_per_run(settings: RaySettings) -> dict[str, Any]:
    """What each worker asks Ray for: its CPUs, and one GPU or one TPU host where there are some."""
    found = accelerator()
    if found is None:
        return {"num_cpus": settings.cpus_per_run}
    kind, each, _ = found
    return {"num_cpus": settings.cpus_per_run, **({"num_gpus": each} if kind == "GPU" else
                                                  {"resources": {kind: each}})}


def worker_count(settings: RaySettings, runs: int) -> int:
    """--ray_workers, else as many workers as the cluster's CPUs hold (its GPUs or TPU hosts where it
    has them); never more than there are runs to do."""
    import ray

    if settings.workers is not None:
        return max(1, min(settings.workers, runs))
    fit = int(ray.cluster_resources().get("CPU", 1)) // settings.cpus_per_run
    found = accelerator()
    if found is not None:
        fit = min(fit, found[2])
    return max(1, min(fit, runs))


def runtime_env(settings: RaySettings) -> dict[str, Any]:
    """The workers' environment variables: the compilation cache on (every compilation cached, however
    short), and one XLA compute thread when a run has one CPU."""
    env = {"JAX_COMPILATION_CACHE_DIR": settings.compilation_cache,
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    if settings.cpus_per_run == 1:
        env["XLA_FLAGS"] = " ".join(f for f in (os.environ.get("XLA_FLAGS", ""), ONE_THREAD_XLA_FLAGS) if f)
    return {"env_vars": env}
