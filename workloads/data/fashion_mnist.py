"""Fashion-MNIST from the Debian package `dataset-fashion-mnist` (or a directory the user names).

Splits: the official 60k training images minus a fixed held-out validation split of 10k (chosen by a
permutation with a fixed seed, the same for every run), and the official 10k test images.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from harness.spec import DataError
from workloads.data.common import lookup_dir
from workloads.data.idx import read_idx

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "FASHION_MNIST_DIR"
FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", (60000, 28, 28)),
    "train_labels": ("train-labels-idx1-ubyte.gz", (60000,)),
    "test_images": ("t10k-images-idx3-ubyte.gz", (10000, 28, 28)),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", (10000,)),
}
NUM_VALIDATION = 10_000
SPLIT_SEED = 20211  # fixed: the validation split must not depend on the run's seed


@dataclasses.dataclass(frozen=True)
class ImageSplits:
    """Normalised float32 images (N, 28, 28, 1) and int32 labels for each split (host numpy)."""

    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def resolve_dir(data_dir: str | None) -> str:
    """The data directory: the argument, else $FASHION_MNIST_DIR, else the Debian package's path."""
    directory = lookup_dir(data_dir, ENV_VAR, DEFAULT_DIR)
    if not os.path.isdir(directory):
        raise DataError(f"Fashion-MNIST not found at {directory}: install it with `apt-get install "
                        f"dataset-fashion-mnist` (or `make setup`), or pass --data_dir / set {ENV_VAR}")
    missing = [name for name, _ in FILES.values() if not os.path.exists(os.path.join(directory, name))]
    if missing:
        raise DataError(f"Fashion-MNIST files missing in {directory}: {', '.join(missing)}; install "
                        f"`dataset-fashion-mnist` or pass --data_dir / set {ENV_VAR}")
    return directory


def load(data_dir: str | None = None) -> ImageSplits:
    """Read, validate, split and normalise Fashion-MNIST (per-pixel stats of the training split)."""
    directory = resolve_dir(data_dir)
    arrays = {key: read_idx(os.path.join(directory, name), shape) for key, (name, shape) in FILES.items()}
    for key in ("train_labels", "test_labels"):
        if arrays[key].max() > 9:
            raise DataError(f"corrupt data file {FILES[key][0]}: labels outside 0..9")
    perm = np.random.default_rng(SPLIT_SEED).permutation(60000)
    valid_idx, train_idx = perm[:NUM_VALIDATION], perm[NUM_VALIDATION:]
    images = arrays["train_images"].astype(np.float32) / 255.0
    mean, std = images[train_idx].mean(), images[train_idx].std()

    def norm(x: np.ndarray) -> np.ndarray:
        return ((x.astype(np.float32) / 255.0 - mean) / std)[..., None]

    labels = arrays["train_labels"].astype(np.int32)
    return ImageSplits(
        train_x=norm(arrays["train_images"][train_idx]), train_y=labels[train_idx],
        valid_x=norm(arrays["train_images"][valid_idx]), valid_y=labels[valid_idx],
        test_x=norm(arrays["test_images"]), test_y=arrays["test_labels"].astype(np.int32))
