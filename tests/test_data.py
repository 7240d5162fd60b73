"""The IDX reader refuses anything malformed; the Fashion-MNIST splits are what the docs say."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import struct
from typing import Any

import numpy as np
import pytest

from harness.spec import DataError
from workloads.data import fashion_mnist
from workloads.data.idx import read_idx

needs_fashion = pytest.mark.skipif(not os.path.isdir(fashion_mnist.DEFAULT_DIR),
                                   reason="needs dataset-fashion-mnist")


def write_idx(path: str, array: np.ndarray, code: int = 0x08, compress: bool = True) -> None:
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + array.astype(">u1" if code == 0x08 else ">i4").tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(payload)


def test_reads_what_was_written(tmp_path: str) -> None:
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(f"{tmp_path}/a.gz", a)
    np.testing.assert_array_equal(read_idx(f"{tmp_path}/a.gz", (2, 3, 4)), a)
    b = np.array([-5, 7, 1 << 20], dtype=np.int32)
    write_idx(f"{tmp_path}/b", b, code=0x0C, compress=False)
    np.testing.assert_array_equal(read_idx(f"{tmp_path}/b"), b)


def test_rejects_bad_magic_wrong_size_wrong_shape_and_bad_gzip(tmp_path: str) -> None:
    a = np.zeros((4, 5), np.uint8)
    write_idx(f"{tmp_path}/ok.gz", a)
    with gzip.open(f"{tmp_path}/ok.gz") as f:
        raw = f.read()
    for name, data, message in [("magic", b"\x01" + raw[1:], "bad IDX magic"),
                                ("short", raw[:-1], re.escape("header says shape (4, 5)")),
                                ("long", raw + b"\x00", "file holds 21 bytes")]:
        with gzip.open(f"{tmp_path}/{name}.gz", "wb") as f:
            f.write(data)
        with pytest.raises(DataError, match=message):
            read_idx(f"{tmp_path}/{name}.gz")
    with pytest.raises(DataError, match="expected"):
        read_idx(f"{tmp_path}/ok.gz", (5, 4))
    with open(f"{tmp_path}/broken.gz", "wb") as f:
        f.write(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="cannot decompress"):
        read_idx(f"{tmp_path}/broken.gz")
    with pytest.raises(DataError, match="missing data file"):
        read_idx(f"{tmp_path}/absent.gz")


def test_missing_directory_names_the_package_and_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fashion_mnist.ENV_VAR, raising=False)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist.*--data_dir"):
        fashion_mnist.load("/nonexistent")


def test_env_var_overrides_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: str) -> None:
    monkeypatch.setenv(fashion_mnist.ENV_VAR, str(tmp_path))
    with pytest.raises(DataError, match=f"files missing in {tmp_path}"):
        fashion_mnist.load(None)


@needs_fashion
def test_fashion_mnist_splits() -> None:
    s = fashion_mnist.load(None)
    assert s.train_x.shape == (50000, 28, 28, 1) and s.valid_x.shape == (10000, 28, 28, 1)
    assert s.test_x.shape == (10000, 28, 28, 1) and s.train_x.dtype == np.float32
    assert abs(float(s.train_x.mean())) < 1e-3 and abs(float(s.train_x.std()) - 1) < 1e-3
    for y in (s.train_y, s.valid_y, s.test_y):  # every class present, roughly balanced
        counts = np.bincount(y, minlength=10)
        assert counts.min() > 0.08 * len(y)
    # The held-out validation split is disjoint from training (no image appears in both).
    train_keys = {x.tobytes() for x in s.train_x[:, ::4, ::4, 0]}
    overlap = sum(x.tobytes() in train_keys for x in s.valid_x[:500, ::4, ::4, 0])
    assert overlap <= 2  # Fashion-MNIST has a handful of near-duplicate images


# --- integrity: the published contents --------------------------------------------------------


def copy_dataset(tmp_path: str, name: str = "fmnist") -> str:
    directory = os.path.join(tmp_path, name)
    shutil.copytree(fashion_mnist.DEFAULT_DIR, directory)
    return directory


def shuffle_labels(path: str, seed: int = 0) -> None:
    """Rewrite the gzipped IDX label file `path` with its labels permuted: a well-formed file
    (same header, same class counts) holding other data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    labels = np.frombuffer(raw, np.uint8, offset=8)
    shuffled = np.random.default_rng(seed).permutation(labels)
    assert not np.array_equal(shuffled, labels)
    with gzip.open(path, "wb") as f:
        f.write(raw[:8] + shuffled.tobytes())


@needs_fashion
def test_debian_files_have_the_published_digests() -> None:
    """The package's files pass (format and digest of the contents) and the digests are SHA-256
    of the decompressed files, recomputed here independently of the reader."""
    for name, expected in fashion_mnist.SHA256.items():
        with gzip.open(os.path.join(fashion_mnist.DEFAULT_DIR, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == expected, name
    fashion_mnist.load(fashion_mnist.DEFAULT_DIR)


@needs_fashion
def test_valid_file_with_shuffled_labels_is_a_one_line_error(tmp_path: str) -> None:
    directory = copy_dataset(str(tmp_path))
    path = os.path.join(directory, "t10k-labels-idx1-ubyte.gz")
    shuffle_labels(path)
    read_idx(path, (10000,))  # the format checks pass: only the digest can tell
    with pytest.raises(DataError) as error:
        fashion_mnist.load(directory)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"corrupt data file {path}: SHA-256")
    assert fashion_mnist.SHA256["t10k-labels-idx1-ubyte.gz"] in message  # what was expected
    assert "apt-get install --reinstall dataset-fashion-mnist" in message and "--data_dir" in message


@needs_fashion
def test_recompressed_intact_copy_is_accepted(tmp_path: str) -> None:
    """The digests are of the contents, not of one gzip encoding (Debian's .gz files differ from
    upstream's): the same data compressed otherwise loads, with the same arrays."""
    directory = copy_dataset(str(tmp_path))
    for name in fashion_mnist.SHA256:
        path = os.path.join(directory, name)
        with gzip.open(path, "rb") as f:
            raw = f.read()
        with gzip.open(path, "wb", compresslevel=1) as f:
            f.write(raw)
        assert open(path, "rb").read() != open(os.path.join(fashion_mnist.DEFAULT_DIR, name), "rb").read()
    np.testing.assert_array_equal(fashion_mnist.load(directory).test_y, fashion_mnist.load(None).test_y)


@needs_fashion
def test_each_file_is_hashed_once_per_process_until_it_changes(
        tmp_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = copy_dataset(str(tmp_path))
    hashed: list[int] = []

    def counting_sha256(data: bytes) -> Any:
        hashed.append(len(data))
        return hashlib.sha256(data)

    monkeypatch.setattr(fashion_mnist, "hashlib", type("H", (), {"sha256": staticmethod(counting_sha256)}))
    name, shape = fashion_mnist.FILES["test_labels"]
    fashion_mnist.read_file(directory, name, shape)
    fashion_mnist.read_file(directory, name, shape)
    assert hashed == [10008]  # once: header (8 bytes) + 10,000 labels
    path = os.path.join(directory, name)
    shuffle_labels(path)  # modified after it was verified: another mtime (and size), hashed anew
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.raises(DataError, match="SHA-256"):
        fashion_mnist.read_file(directory, name, shape)
    assert hashed == [10008, 10008]
