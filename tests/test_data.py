"""The IDX reader refuses anything malformed; the Fashion-MNIST splits are what the docs say."""

from __future__ import annotations

import gzip
import os
import re
import struct

import numpy as np
import pytest

from harness.spec import DataError
from workloads.data import fashion_mnist
from workloads.data.idx import read_idx


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


@pytest.mark.skipif(not os.path.isdir(fashion_mnist.DEFAULT_DIR), reason="needs dataset-fashion-mnist")
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
