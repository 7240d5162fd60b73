"""The helpers every input pipeline shares: one of each, so that the pipelines agree.

* `lookup_dir`: where a dataset is (the argument, else an environment variable, else a default);
* `tensorflow`, `tensorflow_datasets`: imported on first use (JAX-only users never load them) and
  kept off every GPU (they only read data here; JAX owns the accelerators);
* `host_share`, `host_rows`: this process's part of a global batch (which must split evenly) and
  of an evaluation split (which need not);
* `pad_batch`, `eval_batches_per_host`, `padded_eval_batches`: evaluation batches of one shape
  (the evaluation step is compiled once), padded rows masked out, and the same number of batches on
  every process (a multi-host evaluation step needs every process to take part in each batch).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, overload

import jax
import numpy as np

from harness.spec import UserError

Batch = Mapping[str, Any]


# --- locating data ------------------------------------------------------------------------------


@overload
def lookup_dir(given: str | None, env_var: str, default: str) -> str: ...
@overload
def lookup_dir(given: str | None, env_var: str, default: None = None) -> str | None: ...


def lookup_dir(given: str | None, env_var: str, default: str | None = None) -> str | None:
    """The data directory: `given` (a --data_dir), else $`env_var`, else `default` (may be None).

    Empty values count as unset. Only the lookup: each dataset checks what it finds and names its
    own fix.
    """
    return given or os.environ.get(env_var) or default


# --- TensorFlow, lazily -------------------------------------------------------------------------


def tensorflow() -> Any:
    """TensorFlow, imported on first use, with every GPU hidden (it only reads and parses data)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter; must precede import
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # TF already initialised its devices (GPUs then already hidden by us or absent)
        pass
    return tf


def tensorflow_datasets() -> Any:
    """tensorflow_datasets, after `tensorflow()` has hidden the GPUs."""
    tensorflow()
    import tensorflow_datasets as tfds

    return tfds


# --- this process's share -----------------------------------------------------------------------


def process(index: int | None = None, count: int | None = None) -> tuple[int, int]:
    """(index, count) of this process: jax's unless given (tests simulate several hosts)."""
    return (jax.process_index() if index is None else index,
            jax.process_count() if count is None else count)


def host_share(batch_size: int, index: int | None = None, count: int | None = None
               ) -> tuple[int, int]:
    """(rows per process, this process's first row) of a batch of `batch_size` rows split evenly
    over the processes; UserError when it does not split (the batch size is the configuration's)."""
    index, count = process(index, count)
    if batch_size % count:
        raise UserError(f"batch of {batch_size} examples is not divisible by the {count} processes: "
                        f"use a batch size that is a multiple of {count} or a process count that "
                        f"divides {batch_size}")
    local = batch_size // count
    return local, index * local


def host_rows(num_examples: int, count: int | None = None) -> int:
    """Rows of the largest process's share of `num_examples` split as evenly as possible:
    ceil(num_examples / processes); every process pads its share to this many."""
    return math.ceil(num_examples / (jax.process_count() if count is None else count))


# --- evaluation batches -------------------------------------------------------------------------


def pad_batch(batch: Batch, size: int, xp: Any = np) -> dict[str, Any]:
    """Every array zero-padded to `size` rows, plus float32 'mask' (1 real row, 0 padding).

    `xp` is the array module of the arrays: numpy (host batches) or jax.numpy (device-resident
    data, padded on the device). Zero rows carry zero weights too (e.g. masked_lm_weights).
    """
    valid = len(next(iter(batch.values())))
    if valid > size:
        raise ValueError(f"batch of {valid} rows does not fit in {size}")
    padded = {k: v if valid == size else xp.concatenate([v, xp.zeros((size - valid, *v.shape[1:]), v.dtype)])
              for k, v in batch.items()}
    padded["mask"] = (xp.arange(size) < valid).astype(xp.float32)
    return padded


def eval_batches_per_host(num_examples: int, batch_size: int, count: int | None = None) -> int:
    """Batches every process yields for a split of `num_examples`: those of the largest share."""
    return math.ceil(host_rows(num_examples, count) / batch_size)


def padded_eval_batches(batches: Iterable[Batch], size: int, empty: Batch, num_batches: int | None
                        ) -> Iterator[dict[str, Any]]:
    """`batches` padded to `size` rows (`pad_batch`), then all-padding batches (`empty`: the
    features with 0 rows) up to `num_batches` (None: no more), so that every process yields as many."""
    done = 0
    for batch in batches:
        done += 1
        yield pad_batch(batch, size)
    for _ in range(done, num_batches or 0):
        yield pad_batch(empty, size)
