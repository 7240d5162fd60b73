"""BERT pretraining records: the TFRecord format of google-research/bert, written and read with TF.

Format (one tf.train.Example per sequence, as create_pretraining_data.py writes and
run_pretraining.py reads; T = max_seq_length, P = max_predictions_per_seq):

    input_ids            int64[T]   token ids, 0-padded
    input_mask           int64[T]   1 for real tokens, 0 for padding
    segment_ids          int64[T]   0 for sentence A, 1 for sentence B
    masked_lm_positions  int64[P]   positions of the masked tokens, 0-padded
    masked_lm_ids        int64[P]   original ids at those positions, 0-padded
    masked_lm_weights    float[P]   1.0 for a real prediction, 0.0 for padding
    next_sentence_labels int64[1]   0 = B follows A, 1 = B is random

The readers yield numpy dicts of int32 arrays (float32 masked_lm_weights), next_sentence_labels of
shape (batch,): `feature_shapes` says so, the one source of the shapes for the writer, the parser,
the padding of evaluation batches and the workloads' abstract batches. TensorFlow is imported only
inside the functions that need it (jax-only users never load it) and is kept off any GPU: it only
parses records.

Directory layout under the user's data directory (--data_dir, or $BERT_DATA_DIR)::

    <data_dir>/seq_len_128/train/*.tfrecord*   phase 1 (T=128, P=20)
    <data_dir>/seq_len_512/train/*.tfrecord*   phase 2 (T=512, P=80)
    <data_dir>/seq_len_512/eval/*.tfrecord*    held-out records (T=512, P=80); evaluation splits:
                                               'validation' = records with even index, 'test' = odd
                                               (index over the sorted files concatenated)

Produce it with the official script (https://github.com/google-research/bert, uncased vocabulary of
BERT-Large, 30,522 tokens), on the Wikipedia + BooksCorpus text (one sentence per line, documents
separated by blank lines), keeping some shards out of training for eval:

    python create_pretraining_data.py --input_file=<train shard>.txt \\
        --output_file=<data_dir>/seq_len_128/train/<shard>.tfrecord --vocab_file=vocab.txt \\
        --do_lower_case=True --max_seq_length=128 --max_predictions_per_seq=20 \\
        --masked_lm_prob=0.15 --random_seed=12345 --dupe_factor=5
    python create_pretraining_data.py --input_file=<train shard>.txt \\
        --output_file=<data_dir>/seq_len_512/train/<shard>.tfrecord --vocab_file=vocab.txt \\
        --do_lower_case=True --max_seq_length=512 --max_predictions_per_seq=80 \\
        --masked_lm_prob=0.15 --random_seed=12345 --dupe_factor=5
    python create_pretraining_data.py --input_file=<held-out shard>.txt \\
        --output_file=<data_dir>/seq_len_512/eval/<shard>.tfrecord --vocab_file=vocab.txt \\
        --do_lower_case=True --max_seq_length=512 --max_predictions_per_seq=80 \\
        --masked_lm_prob=0.15 --random_seed=12345 --dupe_factor=1

(dupe_factor: how many times each document is re-masked with different masks; 5 as in the
repository's README, 1 for the held-out set so that no sequence is evaluated twice.)
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from harness.spec import DataError
from workloads.data.common import eval_batches_per_host, lookup_dir, padded_eval_batches, tensorflow

ENV_VAR = "BERT_DATA_DIR"
#: max_predictions_per_seq P of the official data at each max_seq_length T: the flags of the
#: commands above (about 0.15 · T; 80 at 512). Data of another origin in this format declares its
#: own (pydocs_bert: workloads.data.pydocs.BuildConfig.max_predictions).
MAX_PREDICTIONS = {128: 20, 512: 80}
EVAL_SEQ_LEN = 512
SPLITS = {"validation": 0, "test": 1}  # split name -> record index parity
TOKEN_FEATURES = ("input_ids", "input_mask", "segment_ids")
LAYOUT = ("<data_dir>/seq_len_128/train/*.tfrecord*, <data_dir>/seq_len_512/train/*.tfrecord* and "
          "<data_dir>/seq_len_512/eval/*.tfrecord* (made by google-research/bert "
          "create_pretraining_data.py; see workloads/data/pretraining_records.py)")

Example = Mapping[str, Any]
Batch = dict[str, np.ndarray]


def feature_shapes(seq_len: int, max_predictions: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Per-row shape and dtype of every feature as the readers yield it (the module docstring's
    table; a record stores next_sentence_labels as one value, a batch as one scalar per row)."""
    int32, float32 = np.dtype(np.int32), np.dtype(np.float32)
    shapes: dict[str, tuple[tuple[int, ...], np.dtype]] = {key: ((seq_len,), int32) for key in TOKEN_FEATURES}
    shapes["masked_lm_positions"] = ((max_predictions,), int32)
    shapes["masked_lm_ids"] = ((max_predictions,), int32)
    shapes["masked_lm_weights"] = ((max_predictions,), float32)
    shapes["next_sentence_labels"] = ((), int32)
    return shapes


def _record_length(shape: tuple[int, ...]) -> int:
    """Values of a feature in one record: its row length (1 for a per-row scalar)."""
    return shape[0] if shape else 1


# --- locating files -----------------------------------------------------------------------------


def resolve_data_dir(data_dir: str | None) -> str:
    """The argument, else $BERT_DATA_DIR; DataError naming the layout and the flag otherwise."""
    directory = lookup_dir(data_dir, ENV_VAR)
    if not directory or not os.path.isdir(directory):
        where = f"{directory} does not exist" if directory else "no data directory given"
        raise DataError(f"BERT pretraining data not found ({where}): pass --data_dir (or set "
                        f"{ENV_VAR}) to a directory laid out as {LAYOUT}")
    return directory


def find_files(data_dir: str, seq_len: int, part: str) -> list[str]:
    """Sorted `<data_dir>/seq_len_<seq_len>/<part>/*.tfrecord*`; DataError naming the layout if none."""
    pattern = os.path.join(data_dir, f"seq_len_{seq_len}", part, "*.tfrecord*")
    files = sorted(glob.glob(pattern))
    if not files:
        raise DataError(f"no BERT pretraining records match {pattern}: pass --data_dir (or set "
                        f"{ENV_VAR}) to a directory laid out as {LAYOUT}")
    return files


# --- writing ------------------------------------------------------------------------------------


def _padded(example: Example, key: str, length: int, dtype: Any) -> np.ndarray:
    values = np.asarray(example[key], dtype).reshape(-1)
    if values.size > length:
        raise ValueError(f"{key} has {values.size} entries, more than {length}")
    return np.pad(values, (0, length - values.size))


def write_records(path: str, examples: Iterable[Example], seq_len: int, max_predictions: int) -> int:
    """Write `examples` to the TFRecord file `path` in the official format; returns how many.

    Each example maps the feature names of the module docstring to sequences; shorter sequences are
    zero-padded to seq_len / max_predictions as create_pretraining_data.py does (padded
    predictions get weight 0). `next_sentence_labels` may be an int or a 1-element sequence.
    """
    tf = tensorflow()

    def feature(key: str, shape: tuple[int, ...], dtype: np.dtype, example: Example) -> Any:
        if dtype.kind == "f":
            values = _padded(example, key, _record_length(shape), np.float32)
            return tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))
        values = _padded(example, key, _record_length(shape), np.int64)
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values.tolist()))

    shapes = feature_shapes(seq_len, max_predictions)
    count = 0
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            features = {key: feature(key, shape, dtype, example) for key, (shape, dtype) in shapes.items()}
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
            count += 1
    return count


# --- parsing ------------------------------------------------------------------------------------


def _parser(seq_len: int, max_predictions: int) -> Any:
    """serialized tf.train.Examples (a batch) -> dict of int32 / float32 tensors (as run_pretraining.py)."""
    tf = tensorflow()
    shapes = feature_shapes(seq_len, max_predictions)
    spec = {key: tf.io.FixedLenFeature([_record_length(shape)], tf.float32 if dtype.kind == "f" else tf.int64)
            for key, (shape, dtype) in shapes.items()}

    def parse(serialized: Any) -> dict[str, Any]:
        parsed = tf.io.parse_example(serialized, spec)
        out = {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in parsed.items()}
        for key, (shape, _) in shapes.items():
            if not shape:  # a per-row scalar: (batch, 1) -> (batch,)
                out[key] = tf.reshape(out[key], [-1])
        return out

    return parse


def _tf_message(error: Exception) -> str:
    """The informative part of a TF error's first line (without TF's op and iterator prefixes)."""
    lines = (str(getattr(error, "message", "")) or str(error)).strip().splitlines()
    text = re.sub(r"\{\{.*?\}\}\s*", "", lines[0] if lines else "")
    text = re.sub(r"^Error in user-defined function .*?Iterator::\S+: ", "", text)
    return re.sub(r"\s*\[Op:.*$", "", text).strip()


def _data_error(files: Sequence[str], error: Exception, seq_len: int, max_predictions: int) -> DataError:
    where = files[0] if len(files) == 1 else f"one of {len(files)} files in {os.path.dirname(files[0])}"
    return DataError(f"corrupt or wrong-format BERT pretraining records in {where} "
                     f"({type(error).__name__}: {_tf_message(error)}); expected "
                     f"max_seq_length={seq_len}, max_predictions_per_seq={max_predictions}: re-create "
                     "them with google-research/bert create_pretraining_data.py using those flags")


def _numpy_batches(dataset: Any, files: Sequence[str], seq_len: int, max_predictions: int) -> Iterator[Any]:
    """Iterate a tf.data dataset as numpy (dicts of arrays for the readers); TF read/parse errors
    become one-line DataErrors."""
    tf = tensorflow()
    iterator = iter(dataset.as_numpy_iterator())
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
            raise _data_error(files, e, seq_len, max_predictions) from None
        yield batch


def check_files(files: Sequence[str], seq_len: int, max_predictions: int) -> None:
    """Parse the first record of every file (cheap, at load time): DataError naming a bad file."""
    tf = tensorflow()
    parse = _parser(seq_len, max_predictions)
    for path in files:
        dataset = tf.data.TFRecordDataset([path]).take(1).batch(1).map(parse)
        if not list(_numpy_batches(dataset, [path], seq_len, max_predictions)):
            raise DataError(f"empty BERT pretraining record file {path}: delete it or re-create it with "
                            "google-research/bert create_pretraining_data.py")


def count_records(files: Sequence[str], seq_len: int, max_predictions: int) -> int:
    """Number of records in `files` (one full read, which also detects truncated files)."""
    tf = tensorflow()
    total = 0
    for path in files:
        dataset = tf.data.TFRecordDataset([path]).batch(4096).map(lambda s: tf.shape(s)[0])
        total += sum(int(n) for n in _numpy_batches(dataset, [path], seq_len, max_predictions))
    return total


# --- readers ------------------------------------------------------------------------------------


def train_dataset(files: Sequence[str], seq_len: int, max_predictions: int, batch_size: int, seed: int,
                  shuffle_buffer: int = 10_000, start: int = 0) -> Iterator[Batch]:
    """Endless batches of `batch_size` records (this host's share of the global batch), from the
    `start`-th batch of the stream on.

    Order, a function of (seed, process index) only: the file list is shuffled with `seed` (anew
    each epoch), files are interleaved deterministically, records are sharded across hosts
    (record i goes to host i mod process_count, so any number of files works: every host reads
    every file and keeps its share), shuffled in a buffer of `shuffle_buffer` records with `seed`,
    parsed and batched (incomplete batches dropped, so every batch has one shape).

    `start` (a run resumed at step `start`): the first `start` batches are skipped, so the
    iterator yields exactly what the one from 0 yields after `start` batches. The pipeline still
    reads and shuffles the skipped records (start · batch_size reads on this host, about as long
    as reading them for training, minus the parsing): tf.data has no random access into a shuffled
    stream of TFRecords.
    """
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    tf = tensorflow()
    files = sorted(files)
    # Deterministic from (seed, process index) in every new pipeline (tests/test_resume_batches.py):
    # both shuffles take an explicit seed, so each pipeline built here draws the same sequence of
    # per-epoch orders (reshuffle_each_iteration reshuffles per pass *within* one pipeline, the
    # same way in every pipeline), the interleave is sequential and the parallel map keeps order.
    # Hence `skip(start)` of the batched stream is the resumed stream; it comes before the parse,
    # which is then spent on the kept batches only.
    dataset = (tf.data.Dataset.from_tensor_slices(files)
               .shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
               .repeat()
               # Sequential (not parallel) interleave: deterministic, and ample for CPU-scale data.
               .interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)), block_length=1)
               .shard(jax.process_count(), jax.process_index())
               .shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
               .batch(batch_size, drop_remainder=True)
               .skip(start)
               .map(_parser(seq_len, max_predictions), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
               .prefetch(2))
    return _numpy_batches(dataset, files, seq_len, max_predictions)


def eval_batches(files: Sequence[str], seq_len: int, max_predictions: int, batch_size: int, split: str,
                 num_records: int | None = None) -> Iterator[Batch]:
    """One deterministic pass over this host's share of split `split` of the held-out records.

    'validation' = records with even index, 'test' = odd index (over the sorted files
    concatenated; works with one file). Host h keeps the split's records h, h + P, ... (P =
    process_count). Every batch has `batch_size` rows and a float32 'mask' (0 for padding;
    padded rows have masked_lm_weights 0 too). With several hosts pass `num_records` (all records
    in `files`, see count_records) so that every host yields the same number of batches, as a
    multi-host evaluation step requires.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    tf = tensorflow()
    files = sorted(files)
    parity = SPLITS[split]
    dataset = (tf.data.TFRecordDataset(files)
               .enumerate()
               .filter(lambda i, _: tf.equal(i % 2, parity))
               .map(lambda _, record: record)
               .shard(jax.process_count(), jax.process_index())
               .batch(batch_size)
               .map(_parser(seq_len, max_predictions))
               .prefetch(2))
    # Equal batch counts on every host (when num_records is known): the split holds the records
    # of its parity, (num_records + 1 - parity) // 2 of them.
    num_batches = (None if num_records is None else
                   eval_batches_per_host((num_records + 1 - parity) // 2, batch_size))
    empty = {k: np.zeros((0, *shape), dtype) for k, (shape, dtype) in
             feature_shapes(seq_len, max_predictions).items()}
    yield from padded_eval_batches(_numpy_batches(dataset, files, seq_len, max_predictions), batch_size,
                                   empty, num_batches)
