"""Reader for the IDX format of (Fashion-)MNIST, strict about what it loads.

The Debian package `dataset-fashion-mnist` ships the original gzipped IDX files. tfds cannot verify
them against its checksums (the gzip headers differ by a few bytes), so they are read directly here.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from harness.spec import DataError

#: IDX type code -> numpy dtype (big-endian for the multi-byte types).
_DTYPES: dict[int, np.dtype] = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
                                0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str, expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read one IDX file (optionally gzipped); raise DataError if it is missing or malformed."""
    return parse_idx(read_payload(path), path, expected_shape)


def read_payload(path: str) -> bytes:
    """The IDX bytes of `path`, gunzipped if it ends in .gz; DataError if missing or undecompressable."""
    if not os.path.exists(path):
        raise DataError(f"missing data file {path}")
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"corrupt data file {path}: cannot decompress ({e}); reinstall the package "
                        "or re-download the file") from None


def parse_idx(raw: bytes, path: str, expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The array held by the IDX bytes `raw` (read from `path`, named in errors); DataError if malformed.

    Format: two zero bytes, a dtype code, the number of dimensions n, n big-endian uint32 sizes, then
    the data. The payload length must equal the product of the sizes times the item size exactly.
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"corrupt data file {path}: bad IDX magic number {raw[:4].hex()}; expected "
                        "00 00 <dtype> <ndim>")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"corrupt data file {path}: truncated header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected_bytes = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected_bytes:
        raise DataError(f"corrupt data file {path}: header says shape {shape} ({expected_bytes} bytes) "
                        f"but the file holds {len(raw) - header} bytes of data")
    if expected_shape is not None and shape != expected_shape:
        raise DataError(f"unexpected data file {path}: shape {shape}, expected {expected_shape}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
