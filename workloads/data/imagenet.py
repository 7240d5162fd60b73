"""ImageNet (ILSVRC2012) input pipeline on the tfds `imagenet2012` dataset, as in MLPerf / Nado et al.

The user supplies one directory (``--data_dir`` or ``$IMAGENET_DIR``) that is either

* an already prepared tfds data dir (it holds ``imagenet2012/<version>/``), or
* the manual-download directory holding ``ILSVRC2012_img_train.tar`` and ``ILSVRC2012_img_val.tar``
  (from https://image-net.org/download-images). The first use prepares the tfds dataset into
  ``<dir>/tfds/`` (hours at full scale); later uses find it there.

Splits (what the harness asks for):

* training: the full official train split (1,281,167 images), as MLPerf trains;
* ``'validation'``: the official 50,000-image validation set, where MLPerf's 75.9% top-1 is measured;
* ``'test'``: ImageNet has no labelled test set, so ``'test'`` is a fixed subset of the TRAIN split,
  its last 10,000 images in tfds order (``train[-10000:]``, the whole train split when smaller),
  evaluated with the evaluation preprocessing. These images are also trained on: ``'test'`` measures
  accuracy on the training distribution (train vs validation, as in Nado et al. Table 3), not
  generalisation.

Preprocessing (Nado et al. Appendix B.1; the Flax ImageNet example and the TPU MLPerf reference):

* train: ``sample_distorted_bounding_box`` (whole-image box [0, 0, 1, 1], min_object_covered 0.1,
  aspect ratio in [3/4, 4/3], area in [0.08, 1], 10 attempts) -> ``decode_and_crop_jpeg`` -> the
  evaluation center crop instead if no valid box was found (the sampler then returns the whole image)
  -> bicubic ``resize`` to 224x224 -> ``random_flip_left_right`` -> ``convert_image_dtype(float32)``
  -> normalisation;
* eval: center crop of side ``floor(224 / (224 + 32) * min(H, W))`` with offsets
  ``((H - side + 1) // 2, (W - side + 1) // 2)`` -> ``decode_and_crop_jpeg`` -> bicubic resize to
  224x224 -> ``convert_image_dtype(float32)`` -> normalisation.
* normalisation, per channel c, on the pixel scale [0, 255] that ``resize`` outputs::

      x_c = (p_c - 255 * mean_c) / (255 * std_c),  mean = (0.485, 0.456, 0.406), std = (0.229, 0.224, 0.225)

  i.e. x_c = (p_c / 255 - mean_c) / std_c. ``resize`` already returns float32, so the reference's
  ``convert_image_dtype(float32)`` does not rescale (it is the identity on float32); bicubic overshoot
  outside [0, 255] is kept, as in the reference.

TensorFlow is imported lazily (only these functions need it) and never sees accelerators.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np

from harness.spec import DataError
from workloads.data.common import (
    eval_batches_per_host,
    host_share,
    lookup_dir,
    padded_eval_batches,
    process,
    tensorflow,
    tensorflow_datasets,
)

ENV_VAR = "IMAGENET_DIR"
TRAIN_TAR = "ILSVRC2012_img_train.tar"
VAL_TAR = "ILSVRC2012_img_val.tar"
DATASET = "imagenet2012"
#: Versions with the same train and validation splits (5.1.0 only adds the unlabelled test split).
VERSIONS = ("5.1.0", "5.0.0")
PREPARED_SUBDIR = "tfds"  # where a manual-download directory gets its prepared tfds dataset

NUM_TRAIN = 1_281_167
NUM_VALIDATION = 50_000
NUM_CLASSES = 1000
TEST_FROM_TRAIN = 10_000  # size of the 'test' split taken from the end of the train split

IMAGE_SIZE = 224
CROP_PADDING = 32
#: Center-crop fraction 224 / (224 + 32) = 0.875, kept fixed when a test shrinks image_size.
CENTER_CROP_FRACTION = IMAGE_SIZE / (IMAGE_SIZE + CROP_PADDING)
MEAN_RGB = (0.485, 0.456, 0.406)
STDDEV_RGB = (0.229, 0.224, 0.225)
#: Shuffle buffer of encoded JPEGs (~110 kB each: ~1.1 GB); the MLPerf TF reference's _SHUFFLE_BUFFER.
SHUFFLE_BUFFER = 10_000

_MISSING_HELP = (f"download {TRAIN_TAR} and {VAL_TAR} from https://image-net.org/download-images into "
                 f"one directory and pass it with --data_dir or set {ENV_VAR} (a prepared tfds data dir "
                 f"holding {DATASET}/ works too)")


@dataclasses.dataclass(frozen=True)
class ImagenetData:
    """A prepared tfds imagenet2012 dataset and the sizes of the splits the workloads use."""

    tfds_dir: str
    version: str
    splits: Mapping[str, str]  # 'train' / 'validation' / 'test' -> tfds split string
    num_examples: Mapping[str, int]  # same keys


# --- locating / preparing the dataset -----------------------------------------------------------


def _prepared_version(tfds_dir: str) -> str | None:
    """The newest supported imagenet2012 version fully prepared under `tfds_dir`, if any."""
    for version in VERSIONS:
        if os.path.exists(os.path.join(tfds_dir, DATASET, version, "dataset_info.json")):
            return version
    return None


def resolve(data_dir: str | None) -> tuple[str, str]:
    """(tfds data dir, version) of a prepared imagenet2012, preparing it from the tars if needed."""
    directory = lookup_dir(data_dir, ENV_VAR)
    if not directory:
        raise DataError(f"no ImageNet directory given: {_MISSING_HELP}")
    directory = os.path.abspath(os.path.expanduser(directory))
    if not os.path.isdir(directory):
        raise DataError(f"ImageNet directory {directory} does not exist: {_MISSING_HELP}")
    for candidate in (directory, os.path.join(directory, PREPARED_SUBDIR)):
        version = _prepared_version(candidate)
        if version is not None:
            return candidate, version
    missing = [name for name in (TRAIN_TAR, VAL_TAR) if not os.path.isfile(os.path.join(directory, name))]
    if missing:
        # With the tars present an interrupted preparation just runs again; without them, say what
        # a tfds dir without a usable version holds.
        found = os.path.join(directory, DATASET)
        if os.path.isdir(found):
            raise DataError(f"{found} holds no complete {DATASET} version {' or '.join(VERSIONS)} "
                            f"(found: {', '.join(sorted(os.listdir(found))) or 'nothing'}); prepare it "
                            f"with tensorflow-datasets {VERSIONS[0]}, or {_MISSING_HELP}")
        raise DataError(f"ImageNet not found in {directory} (missing {', '.join(missing)}): {_MISSING_HELP}")
    if jax.process_count() > 1:  # several hosts preparing into one shared directory would collide
        target = os.path.join(directory, PREPARED_SUBDIR)
        raise DataError(f"ImageNet in {directory} is not prepared yet: run once on a single process "
                        f"(e.g. one seed with --budget=1) to write {target}, then start the multi-host run")
    return _prepare(directory), VERSIONS[0]


def _prepare(manual_dir: str) -> str:
    """Run tfds' imagenet2012 preparation from the two tars into <manual_dir>/tfds."""
    target = os.path.join(manual_dir, PREPARED_SUBDIR)
    if not os.access(manual_dir, os.W_OK):
        raise DataError(f"cannot prepare ImageNet: {manual_dir} is not writable (the tfds dataset is "
                        f"written to {target}); make it writable or prepare it elsewhere with tfds and "
                        f"pass that directory with --data_dir or {ENV_VAR}")
    print(f"Preparing tfds {DATASET} from {manual_dir} into {target} (one-time; hours for the full "
          "dataset)", flush=True)
    tfds = tensorflow_datasets()
    builder = tfds.builder(f"{DATASET}:{VERSIONS[0]}", data_dir=target)
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    except Exception as e:  # noqa: BLE001 - any failure here means unusable input files
        detail = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        raise DataError(f"preparing ImageNet from {manual_dir} failed ({detail}); re-download "
                        f"{TRAIN_TAR} and {VAL_TAR} from https://image-net.org/download-images into it") from e
    return target


def load(data_dir: str | None) -> ImagenetData:
    """Locate (preparing if needed) and validate imagenet2012; the splits are read lazily later."""
    tfds_dir, version = resolve(data_dir)
    builder = tensorflow_datasets().builder(f"{DATASET}:{version}", data_dir=tfds_dir)
    have = builder.info.splits
    missing = [s for s in ("train", "validation") if s not in have or have[s].num_examples == 0]
    if missing:
        raise DataError(f"the tfds {DATASET} dataset in {tfds_dir} lacks the {' and '.join(missing)} "
                        f"split(s): {_MISSING_HELP}")
    num_train = have["train"].num_examples
    test_size = min(TEST_FROM_TRAIN, num_train)
    splits = {"train": "train", "validation": "validation", "test": f"train[-{test_size}:]"}
    sizes = {"train": num_train, "validation": have["validation"].num_examples, "test": test_size}
    return ImagenetData(tfds_dir, version, splits, sizes)


def _builder(data: ImagenetData) -> Any:
    return tensorflow_datasets().builder(f"{DATASET}:{data.version}", data_dir=data.tfds_dir)


# --- preprocessing (tf graph functions) ---------------------------------------------------------


def _resize(image: Any, image_size: int) -> Any:
    # Bicubic as the Flax ImageNet example and the TPU MLPerf reference (resnet_preprocessing.py)
    # that Nado et al.'s Flax pipeline follows; returns float32 on the [0, 255] scale.
    return tensorflow().image.resize(image, [image_size, image_size], method="bicubic")


def _normalize(image: Any) -> Any:
    """x = (p - 255·mean) / (255·std) per channel; `p` float32 in [0, 255] (see the module docstring)."""
    tf = tensorflow()
    image = tf.image.convert_image_dtype(image, tf.float32)  # the reference's op; identity on float32
    mean = tf.constant([255.0 * m for m in MEAN_RGB], shape=[1, 1, 3], dtype=tf.float32)
    std = tf.constant([255.0 * s for s in STDDEV_RGB], shape=[1, 1, 3], dtype=tf.float32)
    return (image - mean) / std


def decode_and_center_crop(image_bytes: Any, image_size: int) -> Any:
    """Center square of side floor(0.875 · min(H, W)), decoded alone, resized to image_size."""
    tf = tensorflow()
    shape = tf.image.extract_jpeg_shape(image_bytes)
    height, width = shape[0], shape[1]
    side = tf.cast(CENTER_CROP_FRACTION * tf.cast(tf.minimum(height, width), tf.float32), tf.int32)
    window = tf.stack([(height - side + 1) // 2, (width - side + 1) // 2, side, side])
    return _resize(tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3), image_size)


def decode_and_random_crop(image_bytes: Any, seed: Any, image_size: int) -> Any:
    """Inception-style random crop (MLPerf parameters) resized to image_size; center crop fallback.

    The stateless sampler draws from the same distribution as tf.image.sample_distorted_bounding_box;
    stateless so that the crop of each example depends on (seed, example index) only, whatever the
    parallelism of the map.
    """
    tf = tensorflow()
    shape = tf.image.extract_jpeg_shape(image_bytes)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, shape=[1, 1, 4]), seed=seed,
        min_object_covered=0.1, aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0), area_range=(0.08, 1.0),
        max_attempts=10, use_image_if_no_bounding_boxes=True)
    window = tf.stack([begin[0], begin[1], size[0], size[1]])
    crop = tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3)
    # After max_attempts failures the sampler returns the whole image; the references then take the
    # eval center crop. They detect it by comparing the (h, w, c) shapes, which misses grayscale JPEGs
    # (c = 1 vs 3); comparing height and width is what that test means.
    whole_image = tf.reduce_all(tf.equal(size[:2], shape[:2]))
    return tf.cond(whole_image, lambda: decode_and_center_crop(image_bytes, image_size),
                   lambda: _resize(crop, image_size))


def preprocess_train(image_bytes: Any, seed: Any, image_size: int = IMAGE_SIZE) -> Any:
    """(image_size, image_size, 3) float32: random crop, resize, random flip, normalise."""
    tf = tensorflow()
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    image = decode_and_random_crop(image_bytes, crop_seed, image_size)
    image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return _normalize(image)


def preprocess_eval(image_bytes: Any, image_size: int = IMAGE_SIZE) -> Any:
    """(image_size, image_size, 3) float32: center crop, resize, normalise (deterministic)."""
    return _normalize(decode_and_center_crop(image_bytes, image_size))


# --- batches ------------------------------------------------------------------------------------


def _host_seeds(seed: int, process_index: int) -> tuple[int, int, int]:
    """(file-order, shuffle-buffer, augmentation) seeds from (run seed, host) via numpy's SeedSequence."""
    a, b, c = np.random.SeedSequence([seed, process_index]).generate_state(3)
    return int(a), int(b), int(c)


def train_dataset(data: ImagenetData, seed: int, batch_size: int, image_size: int = IMAGE_SIZE,
                  process_index: int = 0, process_count: int = 1, start: int = 0) -> Any:
    """Endless tf.data pipeline of this host's training batches of `batch_size` (drop remainder),
    from the `start`-th batch on.

    Each host reads its own 1/process_count of the train split (tfds.even_splits); the file order,
    the shuffle buffer and the augmentations are seeded from (seed, process_index) only.

    `start` (a run resumed at step `start`): the iterator yields exactly what the one from 0
    yields after `start` batches. The skipped examples are still read and shuffled (start ·
    batch_size encoded JPEGs on this host: tf.data has no random access into a shuffled stream),
    but not decoded or augmented.
    """
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    tf, tfds = tensorflow(), tensorflow_datasets()
    file_seed, shuffle_seed, aug_seed = _host_seeds(seed, process_index)
    split = tfds.even_splits(data.splits["train"], n=process_count)[process_index]
    ds = _builder(data).as_dataset(
        split=split, shuffle_files=True, decoders={"image": tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(shuffle_seed=file_seed, shuffle_reshuffle_each_iteration=True))
    ds = ds.repeat().shuffle(SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=True)

    def parse(index: Any, example: Any) -> dict[str, Any]:
        example_seed = tf.stack([tf.constant(aug_seed, tf.int64), index])  # per-example stateless seed
        return {"x": preprocess_train(example["image"], example_seed, image_size),
                "y": tf.cast(example["label"], tf.int32)}

    # Resuming: every pipeline built here yields the same stream (explicitly seeded file and
    # buffer shuffles, order-keeping map; tests/test_resume_batches.py), and each example's
    # augmentation depends on its index in that stream only. The stream is endless, so batch k
    # holds examples [k·B, (k+1)·B): skipping start·B examples after `enumerate` (which keeps
    # their indices) and before the decoding map equals skipping `start` batches.
    ds = ds.enumerate().skip(start * batch_size)
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def train_batches(data: ImagenetData, seed: int, global_batch_size: int, image_size: int = IMAGE_SIZE,
                  process_index: int | None = None, process_count: int | None = None, start: int = 0
                  ) -> Iterator[dict[str, np.ndarray]]:
    """Endless {"x": float32 (B, S, S, 3), "y": int32 (B,)} of this host, B = global // processes,
    from the `start`-th batch on (train_dataset)."""
    index, count = process(process_index, process_count)
    local, _ = host_share(global_batch_size, index, count)
    yield from train_dataset(data, seed, local, image_size, index, count, start).as_numpy_iterator()


def eval_batches(data: ImagenetData, split: str, batch_size: int, image_size: int = IMAGE_SIZE,
                 process_index: int | None = None, process_count: int | None = None
                 ) -> Iterator[dict[str, np.ndarray]]:
    """One pass over this host's share of `split` ('validation' or 'test') in fixed-shape batches.

    {"x", "y", "mask"}: the last batch is zero-padded with mask 0, and every host yields the same
    number of batches, ceil(ceil(N / processes) / batch_size), padding with all-masked batches.
    """
    if split not in ("validation", "test"):
        raise ValueError(f"unknown ImageNet eval split {split!r}; expected 'validation' or 'test'")
    tf, tfds = tensorflow(), tensorflow_datasets()
    index, count = process(process_index, process_count)
    host_split = tfds.even_splits(data.splits[split], n=count)[index]
    ds = _builder(data).as_dataset(split=host_split, shuffle_files=False,
                                   decoders={"image": tfds.decode.SkipDecoding()})
    ds = ds.map(lambda ex: {"x": preprocess_eval(ex["image"], image_size),
                            "y": tf.cast(ex["label"], tf.int32)},
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    empty = {"x": np.zeros((0, image_size, image_size, 3), np.float32), "y": np.zeros((0,), np.int32)}
    yield from padded_eval_batches(ds.as_numpy_iterator(), batch_size, empty,
                                   eval_batches_per_host(data.num_examples[split], batch_size, count))
