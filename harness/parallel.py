"""Data parallelism over all devices (of all processes) with jax.sharding.

One mesh axis, ``data``. Parameters, model state and optimizer state are replicated; every global
batch is sharded along its leading axis, so each device holds ``global_batch / device_count``
examples and accumulates gradients over its own micro-batches (harness/training.py). Batch norm
therefore normalises over one micro-batch on one device (ghost BN, MLPerf's span of 64), never
across devices.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from harness.errors import UserError

DATA_AXIS = "data"


def data_mesh(devices: list[Any] | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process)."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def put_replicated(tree: Any, mesh: Mesh) -> Any:
    """Every leaf on every device of the mesh (one fresh buffer per leaf)."""
    return jax.device_put(tree, replicated(mesh))


def put_batch(batch: Any, mesh: Mesh) -> Any:
    """This process's share of a global batch -> a global array sharded along the data axis.

    On one process the share is the whole batch; with several, each passes its own examples and
    jax assembles the global array without moving data between hosts.
    """
    sharding = batch_sharded(mesh)
    if jax.process_count() == 1:
        return jax.device_put(batch, sharding)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch)


def check_divisible(global_batch: int, micro_batch: int, devices: int, what: str) -> None:
    """The global batch must split into whole micro-batches on every one of `devices` devices."""
    if global_batch % (devices * micro_batch):
        raise UserError(f"{what}: global batch {global_batch} is not a multiple of {devices} device(s) x "
                        f"micro-batch {micro_batch}; use a device count that divides "
                        f"{global_batch // micro_batch} micro-batches")
