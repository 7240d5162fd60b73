"""Input pipelines start at any step (spec.Workload.train_batches): the iterator from the `start`-th
batch yields exactly the batches, bit for bit, that the iterator from 0 yields after `start` batches,
so that a run resumed from a checkpoint at step `start` trains on the same data. Checked for every
pipeline: Fashion-MNIST (real data, device-resident, order a function of (seed, epoch)), pydocs_bert
(its real records), BERT-Large and ImageNet (tf.data on the synthetic full-scale fixtures of
tests/test_bert.py and tests/imagenet_fixture.py), including that a tf.data pipeline built anew,
in this process or another one, repeats the stream of the first (what `skip` relies on)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jax
import numpy as np
import pytest

from harness.spec import DataError
from tests.conftest import REPO
from workloads import get_workload
from workloads.data import fashion_mnist

Batch = dict[str, np.ndarray]
#: Batches compared after each start.
AFTER = 3


def host(batch: Mapping[str, Any]) -> Batch:
    """A batch as host numpy arrays (device-resident pipelines yield jax arrays)."""
    return {k: np.asarray(v) for k, v in batch.items()}


def reference(batches: Iterator[Mapping[str, Any]], wanted: Iterable[int]) -> dict[int, Batch]:
    """The batches of `batches` at the indices `wanted` (the iterator from 0, read once)."""
    wanted = set(wanted)
    return {i: host(b) for i, b in zip(range(max(wanted) + 1), batches) if i in wanted}


def assert_same(got: Batch, want: Batch, where: str) -> None:
    assert got.keys() == want.keys(), where
    for key, value in want.items():
        assert got[key].dtype == value.dtype and np.array_equal(got[key], value), f"{where}: {key}"


def check_starts(batches: Callable[[int], Iterator[Mapping[str, Any]]], starts: Iterable[int],
                 after: int = AFTER) -> dict[int, Batch]:
    """For each start s: the `after` batches of `batches(s)` equal batches s, s+1, ... of
    `batches(0)`, bit for bit; returns the reference batches (index -> batch)."""
    starts = sorted(starts)
    ref = reference(batches(0), [s + j for s in starts for j in range(after)])
    for s in starts:
        got = [host(b) for b in itertools.islice(batches(s), after)]
        for j, batch in enumerate(got):
            assert_same(batch, ref[s + j], f"start {s}, batch {j}")
    return ref


def differ(a: Batch, b: Batch) -> bool:
    return any(not np.array_equal(a[k], b[k]) for k in a)


# --- Fashion-MNIST: the order is a function of (seed, epoch) ------------------------------------


@pytest.fixture(scope="module")
def fashion() -> tuple[Any, Any]:
    if not os.path.isdir(fashion_mnist.DEFAULT_DIR):
        pytest.skip("needs dataset-fashion-mnist")
    workload = get_workload("fashion_mnist_resnet")
    return workload, workload.load_data(None)


def test_fashion_mnist_resumes_at_any_step(fashion: tuple[Any, Any]) -> None:
    """Starts 0, 1, mid-epoch, the epoch boundary, and beyond one epoch (39 batches of 1,280 per
    epoch of 50,000 images); the real global batch (the workload has no batch-size knob)."""
    wl, data = fashion
    per_epoch = data.train_x.shape[0] // wl.global_batch_size
    assert per_epoch == 39
    starts = (0, 1, 20, per_epoch, per_epoch + 2)
    ref = check_starts(lambda s: wl.train_batches(data, 7, start=s), starts)
    # Not vacuous: each epoch has its own order, and batches within an epoch differ.
    assert differ(ref[0], ref[per_epoch]) and differ(ref[0], ref[1])


def test_fashion_mnist_start_jumps_to_its_epoch(fashion: tuple[Any, Any]) -> None:
    """A start a million epochs in returns at once (no skipped batch is drawn) with the batch the
    documented order gives: epoch e is permutation default_rng([seed, e]) cut into batches."""
    wl, data = fashion
    n, size = data.train_x.shape[0], wl.global_batch_size
    epoch, offset = 1_000_000, 5
    batch = host(next(wl.train_batches(data, 3, start=epoch * (n // size) + offset)))
    idx = np.random.default_rng([3, epoch]).permutation(n)[offset * size:(offset + 1) * size]
    assert_same(batch, host({"x": data.train_x[idx], "y": data.train_y[idx]}), "epoch 1e6")


def test_fashion_mnist_host_shares_resume_too(fashion: tuple[Any, Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With 2 processes, host 1 from start s yields the second half of global batch s."""
    wl, data = fashion
    starts = (0, 41)
    ref = reference(wl.train_batches(data, 0), starts)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    half = wl.global_batch_size // 2
    for s in starts:
        got = host(next(wl.train_batches(data, 0, start=s)))
        assert_same(got, {k: v[half:] for k, v in ref[s].items()}, f"host 1, start {s}")


def test_fashion_mnist_rejects_a_negative_start(fashion: tuple[Any, Any]) -> None:
    wl, data = fashion
    with pytest.raises(ValueError, match="start must be >= 0"):
        next(wl.train_batches(data, 0, start=-1))


# --- BERT-Large pipeline on the synthetic records of tests/test_bert.py ------------------------


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The documented layout with test_bert's random records: 21 records at 128 in two files
    (4 batches of 5 per pass), 6 at 512, 11 held out."""
    pytest.importorskip("tensorflow", reason="needs the fullscale extra: pip install -e '.[fullscale]'")
    from tests.test_bert import FILES, make_examples
    from workloads.data import pretraining_records as records

    root = str(tmp_path_factory.mktemp("bert_resume"))
    rng = np.random.default_rng(0)
    for (seq_len, part), sizes in FILES.items():
        os.makedirs(os.path.join(root, f"seq_len_{seq_len}", part))
        for i, n in enumerate(sizes):
            path = os.path.join(root, f"seq_len_{seq_len}", part, f"part-{i:05d}.tfrecord")
            records.write_records(path, make_examples(n, seq_len, rng), seq_len, records.MAX_PREDICTIONS[seq_len])
    return root


@pytest.mark.fullscale
def test_bert_large_resumes_in_both_phases(bert_dir: str) -> None:
    from tests.test_bert import VOCAB
    from workloads.bert import BertLarge32k

    wl = BertLarge32k(num_layers=1, hidden_size=64, vocab_size=VOCAB, phase_batch_sizes=(5, 2),
                      micro_batch_sizes=(5, 2))
    data = wl.load_data(bert_dir)
    for phase, starts in ((0, (0, 1, 4, 9)), (1, (0, 1, 3, 7))):  # beyond several passes over the files
        ref = check_starts(lambda s, phase=phase: wl.train_batches(data, 11, phase, start=s), starts)
        assert differ(ref[0], ref[starts[-1]]), phase


@pytest.mark.fullscale
def test_tf_data_order_is_the_same_in_every_new_pipeline(bert_dir: str) -> None:
    """What skip() relies on: with fixed seeds, the per-pass reshuffles of the file list
    (reshuffle_each_iteration) and the interleave give the same stream in every pipeline built
    anew, over many passes. shuffle_buffer=1 exposes the file order and the interleave."""
    from workloads.data import pretraining_records as records

    files = records.find_files(bert_dir, 128, "train")
    assert len(files) == 2

    def ids(seed: int) -> list[tuple[int, ...]]:
        stream = records.train_dataset(files, 128, 20, 3, seed, shuffle_buffer=1)
        return [tuple(row) for batch in itertools.islice(stream, 56) for row in batch["input_ids"]]

    first, second = ids(5), ids(5)
    assert first == second  # 168 rows: 8 passes over the 21 records
    passes = [tuple(first[i:i + 21]) for i in range(0, 168, 21)]
    assert len(set(passes)) > 1  # the file order is reshuffled per pass (else this proves little)
    assert ids(6) != first


_DIGEST_SCRIPT = """
import hashlib, itertools, json, sys
from workloads.data import pretraining_records as records
files, seed, start, n = json.loads(sys.argv[1])
h = hashlib.sha256()
for batch in itertools.islice(records.train_dataset(files, 128, 20, 5, seed, start=start), n):
    for key in sorted(batch):
        h.update(batch[key].tobytes())
print(h.hexdigest())
"""


def _digest(batches: Iterable[Mapping[str, np.ndarray]]) -> str:
    h = hashlib.sha256()
    for batch in batches:
        for key in sorted(batch):
            h.update(batch[key].tobytes())
    return h.hexdigest()


@pytest.mark.slow
@pytest.mark.fullscale
def test_a_new_process_resumes_the_tf_data_stream(bert_dir: str) -> None:
    """A resumed run is a new process: its pipeline from `start` yields what this process's
    pipeline from 0 yielded after `start` batches (no hidden per-process seed state)."""
    from workloads.data import pretraining_records as records

    files = records.find_files(bert_dir, 128, "train")
    start, n = 6, 4
    here = _digest(itertools.islice(records.train_dataset(files, 128, 20, 5, 9), start, start + n))
    proc = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT, json.dumps([files, 9, start, n])],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == here


# --- pydocs_bert on its real records ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.fullscale
def test_pydocs_bert_resumes_on_its_real_records() -> None:
    """The real records (the cache every pydocs_bert run uses, built from python3.11-doc on first
    use, ~25 s), small batches, a few batches after each start in both phases."""
    pytest.importorskip("tensorflow", reason="needs the fullscale extra: pip install -e '.[fullscale]'")
    from workloads.data import pydocs
    from workloads.pydocs_bert import PydocsBert

    try:
        pydocs.source_dir()
    except DataError:
        pytest.skip("needs python3.11-doc (or $PYDOCS_DIR)")
    wl = PydocsBert(phase_batch_sizes=(16, 8), micro_batch_sizes=(16, 8))
    with contextlib.redirect_stdout(io.StringIO()):
        data = wl.load_data(None)
    for phase in (0, 1):
        ref = check_starts(lambda s, phase=phase: wl.train_batches(data, 2, phase, start=s), (0, 1, 6),
                           after=2)
        assert differ(ref[0], ref[6]), phase


# --- ImageNet (tfds) on the synthetic manual-download directory ---------------------------------


@pytest.mark.fullscale
def test_imagenet_resumes_at_any_step(tmp_path_factory: pytest.TempPathFactory) -> None:
    """24 training images, batches of 8 (3 per epoch): starts 0, 1, an epoch boundary, beyond.
    The augmentation of each example depends on its index in the stream: resumed batches are the
    same crops and flips, not only the same images."""
    pytest.importorskip("tensorflow_datasets", reason="needs the fullscale extra: pip install -e '.[fullscale]'")
    from tests.imagenet_fixture import write_manual_dir
    from workloads.data import imagenet
    from workloads.imagenet import ImagenetResNet50

    root = write_manual_dir(str(tmp_path_factory.mktemp("imagenet_resume")), per_class=8, num_val=4)
    with contextlib.redirect_stdout(io.StringIO()):
        data = imagenet.load(root)
    wl = ImagenetResNet50({"virtual_batch_size": 8}, global_batch_size=8, eval_batch_size=4, image_size=32)
    ref = check_starts(lambda s: wl.train_batches(data, 4, start=s), (0, 1, 3, 5), after=2)
    assert differ(ref[0], ref[3])
