"""Fashion-MNIST from the Debian package `dataset-fashion-mnist` (or a directory the user names).

Splits: the official 60k training images minus a fixed held-out validation split of 10k (chosen by a
permutation with a fixed seed, the same for every run), and the official 10k test images.

Integrity: each file's contents are checked against the SHA-256 of the published file (`SHA256`),
after the format checks of the IDX reader, once per process and file (`verify_digest`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np

from harness.spec import DataError
from workloads.data.common import lookup_dir
from workloads.data.idx import parse_idx, read_payload

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
ENV_VAR = "FASHION_MNIST_DIR"
FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", (60000, 28, 28)),
    "train_labels": ("train-labels-idx1-ubyte.gz", (60000,)),
    "test_images": ("t10k-images-idx3-ubyte.gz", (10000, 28, 28)),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", (10000,)),
}
#: SHA-256 of each file's DECOMPRESSED contents (the IDX bytes), i.e. of the published data.
#: Why not of the .gz files: the Debian package (dataset-fashion-mnist 0.0~git20200523.55506a9-1)
#: re-compressed them (other gzip headers and deflate streams), so its .gz files differ from upstream's: their MD5s
#: are not the ones zalandoresearch/fashion-mnist's README publishes (train-images 8d4fb7e6...,
#: train-labels 25c81989..., t10k-images bef4ecab..., t10k-labels bb300cfd...; Debian's:
#: cf8536b0..., 10bea18f..., f78720b4..., 0d30e22e...), while their contents are the same. Checked
#: on 2026-12-02: gunzipping upstream's git copies of the two label files (data/fashion/, MD5 equal to
#: the README's) gives exactly the digests below, as do Debian's files; the digests of all four are
#: also the ones that independent loaders downloading from upstream verify against. Checking the
#: contents accepts any intact copy (Debian's, upstream's download, a re-gzipped one) and nothing else.
SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
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


FileKey = tuple[str, int, int]
#: Files whose digest matched in this process, by `file_key` (verify_digest).
_VERIFIED: set[FileKey] = set()


def file_key(path: str) -> FileKey | None:
    """(real path, size, modification time in ns) of `path`; None if it cannot be stat'ed."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return os.path.realpath(path), stat.st_size, stat.st_mtime_ns


def verify_digest(path: str, payload: bytes, key: FileKey | None) -> None:
    """DataError naming `path` unless its contents `payload` hash to the published SHA256.

    Hashing the four files takes ~0.05 s (of a ~0.7 s load; measured on 2026-12-02, 2 CPU cores):
    a verified file is remembered by its `key` (taken before reading it) for the rest of the
    process, so that later loads in the same process (every Sweep of harness.bench, the tests) do
    not hash it again; a file replaced or modified since has another key and is hashed anew.
    """
    if key is not None and key in _VERIFIED:
        return
    expected = SHA256[os.path.basename(path)]
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise DataError(f"corrupt data file {path}: SHA-256 of its contents is {actual}, expected "
                        f"{expected} (the published Fashion-MNIST file); reinstall it with `apt-get "
                        f"install --reinstall dataset-fashion-mnist` or pass --data_dir (or set "
                        f"{ENV_VAR}) to an intact copy")
    if key is not None:
        _VERIFIED.add(key)


def read_file(directory: str, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One dataset file as an array: format checks first (their messages say what is wrong with the
    file's structure), then the published digest (any other change of the contents)."""
    path = os.path.join(directory, name)
    key = file_key(path)  # before reading: a file changed while it is read is hashed again next time
    payload = read_payload(path)
    array = parse_idx(payload, path, shape)
    verify_digest(path, payload, key)
    return array


def load(data_dir: str | None = None) -> ImageSplits:
    """Read, validate, split and normalise Fashion-MNIST (per-pixel stats of the training split)."""
    directory = resolve_dir(data_dir)
    arrays = {key: read_file(directory, name, shape) for key, (name, shape) in FILES.items()}
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
