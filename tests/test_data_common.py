"""The shared input-pipeline helpers (workloads/data/common.py): the data-directory lookup order,
this process's share of a batch (and its error), evaluation-batch padding and equal batch counts
on every process, the lazy TensorFlow import."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness.spec import DataError, UserError
from tests.conftest import REPO
from workloads.data import common

# --- data-directory lookup ----------------------------------------------------------------------


def test_lookup_dir_prefers_the_argument_then_the_env_var_then_the_default(monkeypatch: pytest.MonkeyPatch
                                                                           ) -> None:
    monkeypatch.setenv("SOME_DATA_DIR", "/from/env")
    assert common.lookup_dir("/given", "SOME_DATA_DIR", "/default") == "/given"
    assert common.lookup_dir(None, "SOME_DATA_DIR", "/default") == "/from/env"
    assert common.lookup_dir("", "SOME_DATA_DIR", "/default") == "/from/env"  # empty: unset
    monkeypatch.setenv("SOME_DATA_DIR", "")
    assert common.lookup_dir(None, "SOME_DATA_DIR", "/default") == "/default"
    monkeypatch.delenv("SOME_DATA_DIR")
    assert common.lookup_dir(None, "SOME_DATA_DIR", "/default") == "/default"
    assert common.lookup_dir(None, "SOME_DATA_DIR") is None  # no default: the caller names the fix


def test_every_dataset_looks_up_its_directory_the_same_way(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: str) -> None:
    """Each dataset's own lookup goes through lookup_dir: the env var is read when no argument is
    given, and the argument wins over it."""
    from workloads.data import fashion_mnist, imagenet, pretraining_records, pydocs

    for var in (fashion_mnist.ENV_VAR, pydocs.CACHE_ENV_VAR, pydocs.SOURCE_ENV_VAR):
        monkeypatch.setenv(var, str(tmp_path))
    assert pydocs.cache_root(None) == str(tmp_path) and pydocs.cache_root("/x") == "/x"
    with pytest.raises(DataError, match=f"files missing in {tmp_path}"):
        fashion_mnist.resolve_dir(None)
    with pytest.raises(DataError, match=f"no \\*.rst.txt files under {tmp_path}"):
        pydocs.source_dir(None)
    monkeypatch.setenv(pretraining_records.ENV_VAR, str(tmp_path))
    assert pretraining_records.resolve_data_dir(None) == str(tmp_path)
    monkeypatch.setenv(imagenet.ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(DataError, match="absent does not exist"):
        imagenet.resolve(None)


# --- this process's share -----------------------------------------------------------------------


def test_host_share_splits_a_batch_into_contiguous_equal_parts() -> None:
    assert common.host_share(12, index=0, count=1) == (12, 0)
    assert [common.host_share(12, index=i, count=3) for i in range(3)] == [(4, 0), (4, 4), (4, 8)]


def test_host_share_of_an_indivisible_batch_is_a_user_error_naming_the_fix() -> None:
    with pytest.raises(UserError) as e:
        common.host_share(1280, index=0, count=3)
    message = str(e.value)
    assert "1280" in message and "3 processes" in message and "multiple of 3" in message
    assert "\n" not in message


def test_host_share_defaults_to_jax_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jax, "process_count", lambda: 4)
    monkeypatch.setattr(jax, "process_index", lambda: 2)
    assert common.host_share(64) == (16, 32)
    assert common.host_rows(10) == 3  # ceil(10 / 4): the largest share
    assert common.host_rows(10, count=1) == 10


def test_the_workloads_share_batches_with_the_same_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image-classification and BERT workloads raise host_share's UserError for a global batch
    the processes cannot split (they raised ValueErrors with other messages before)."""
    from workloads import get_workload
    from workloads.bert import BertLarge32k

    monkeypatch.setattr(jax, "process_count", lambda: 3)
    wl = get_workload("fashion_mnist_lenet")
    data = wl.to_device(np.zeros((2048, 28, 28, 1), np.float32), np.zeros(2048, np.int32), {})
    with pytest.raises(UserError, match="batch of 1024 examples is not divisible by the 3 processes"):
        next(wl.train_batches(data, 0))
    bert = BertLarge32k(num_layers=1, hidden_size=64, vocab_size=50, phase_batch_sizes=(8, 4),
                        micro_batch_sizes=(8, 4))
    with pytest.raises(UserError, match="batch of 8 examples is not divisible by the 3 processes"):
        bert.train_batches(None, 0)  # type: ignore[arg-type]


# --- evaluation batches -------------------------------------------------------------------------


def test_pad_batch_zero_pads_every_array_and_masks_the_padding() -> None:
    batch = {"x": np.arange(6, dtype=np.float32).reshape(3, 2), "y": np.array([4, 5, 6], np.int32)}
    padded = common.pad_batch(batch, 5)
    assert list(padded) == ["x", "y", "mask"]
    np.testing.assert_array_equal(padded["x"], [[0, 1], [2, 3], [4, 5], [0, 0], [0, 0]])
    np.testing.assert_array_equal(padded["y"], [4, 5, 6, 0, 0])
    np.testing.assert_array_equal(padded["mask"], [1, 1, 1, 0, 0])
    assert padded["x"].dtype == np.float32 and padded["y"].dtype == np.int32
    assert padded["mask"].dtype == np.float32
    full = common.pad_batch(batch, 3)
    assert full["x"] is batch["x"] and full["mask"].tolist() == [1, 1, 1]
    empty = common.pad_batch({"x": np.zeros((0, 2), np.float32)}, 2)
    assert empty["x"].shape == (2, 2) and empty["mask"].tolist() == [0, 0]
    with pytest.raises(ValueError, match="does not fit"):
        common.pad_batch(batch, 2)


def test_pad_batch_on_the_device_stays_on_the_device() -> None:
    padded = common.pad_batch({"x": jnp.ones((2, 3)), "y": jnp.array([1, 2], jnp.int32)}, 4, xp=jnp)
    assert all(isinstance(v, jax.Array) for v in padded.values())
    np.testing.assert_array_equal(padded["x"].sum(1), [3, 3, 0, 0])
    np.testing.assert_array_equal(padded["mask"], [1, 1, 0, 0])
    assert padded["y"].dtype == jnp.int32 and padded["mask"].dtype == jnp.float32


def test_eval_batches_per_host_is_the_count_of_the_largest_share() -> None:
    # 10 examples over 3 processes: shares 4, 3, 3; batches of 2 -> 2 batches on every process.
    assert common.eval_batches_per_host(10, 2, count=3) == 2
    assert common.eval_batches_per_host(10, 4, count=1) == 3
    assert common.eval_batches_per_host(9, 3, count=3) == 1
    assert common.eval_batches_per_host(0, 3, count=2) == 0


def test_padded_eval_batches_pad_rows_then_add_all_padding_batches() -> None:
    empty = {"x": np.zeros((0, 2), np.float32)}
    batches = [{"x": np.ones((2, 2), np.float32)}, {"x": np.ones((1, 2), np.float32)}]
    out = list(common.padded_eval_batches(iter(batches), 2, empty, num_batches=4))
    assert [b["mask"].tolist() for b in out] == [[1, 1], [1, 0], [0, 0], [0, 0]]
    assert all(b["x"].shape == (2, 2) for b in out) and out[3]["x"].sum() == 0
    assert len(list(common.padded_eval_batches(iter(batches), 2, empty, num_batches=None))) == 2
    assert len(list(common.padded_eval_batches(iter(batches), 2, empty, num_batches=1))) == 2  # never fewer


def test_shares_of_an_eval_split_are_equal_in_number_and_cover_it() -> None:
    """Simulated hosts as imagenet.eval_batches splits a split (contiguous shares of ceil or floor
    size): every host yields the same number of batches, and the real rows are the split."""
    n, size, count = 11, 2, 3
    rows = np.arange(n)
    bounds = np.linspace(0, n, count + 1).round().astype(int)
    per_host = common.eval_batches_per_host(n, size, count)
    seen = []
    for i in range(count):
        share = rows[bounds[i]:bounds[i + 1]]
        batches = ({"r": share[k:k + size]} for k in range(0, len(share), size))
        out = list(common.padded_eval_batches(batches, size, {"r": rows[:0]}, per_host))
        assert len(out) == per_host == 2
        seen += [int(r) for b in out for r, m in zip(b["r"], b["mask"]) if m]
    assert sorted(seen) == rows.tolist()


# --- TensorFlow, lazily -------------------------------------------------------------------------


@pytest.mark.slow  # starts JAX in a subprocess
@pytest.mark.cli
def test_importing_the_pipelines_does_not_load_tensorflow() -> None:
    code = ("import sys, workloads.data.common, workloads.data.imagenet, workloads.data.pydocs, "
            "workloads.data.pretraining_records, workloads.imagenet, workloads.bert, workloads.pydocs_bert; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1000:]
