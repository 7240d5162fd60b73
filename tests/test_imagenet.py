"""The full-scale ImageNet ResNet-50 workloads, through the real tfds pipeline on a synthetic
manual-download directory (tests/imagenet_fixture.py): preparation, preprocessing, the papers'
numbers, one harness step at the real ResNet-50 architecture, and the missing-data message."""

from __future__ import annotations

import contextlib
import io
import math
import os
import sqlite3

import jax
import numpy as np
import pytest

from harness import plan, store
from harness.runner import RunOptions, Sweep
from harness.spec import DataError, ParamType, UserError, split_param_types, validate_knobs
from tests.imagenet_fixture import SYNSETS, write_manual_dir
from workloads import get_workload, workload_names
from workloads.data import imagenet
from workloads.imagenet import ImagenetResNet50, ImagenetResNet50Cosine6000

pytest.importorskip("tensorflow_datasets", reason="needs the fullscale extra: pip install -e '.[fullscale]'")
pytestmark = pytest.mark.fullscale

PER_CLASS, NUM_VAL = 8, 10
NUM_TRAIN = len(SYNSETS) * PER_CLASS


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, imagenet.ImagenetData, str]:
    """(manual dir, loaded data, what the first load printed): tfds preparation runs once here."""
    root = write_manual_dir(str(tmp_path_factory.mktemp("imagenet")), per_class=PER_CLASS, num_val=NUM_VAL)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        data = imagenet.load(root)
    return root, data, out.getvalue()


# --- (a) the pipeline ---------------------------------------------------------------------------


def test_manual_dir_is_prepared_once_then_found(prepared):
    root, data, printed = prepared
    assert "Preparing tfds imagenet2012" in printed and os.path.join(root, "tfds") in printed
    assert data.tfds_dir == os.path.join(root, "tfds")
    assert dict(data.num_examples) == {"train": NUM_TRAIN, "validation": NUM_VAL, "test": NUM_TRAIN}
    # Second use of the manual dir, and the prepared tfds dir itself: no preparation, same dataset.
    for directory in (root, os.path.join(root, "tfds")):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            again = imagenet.load(directory)
        assert out.getvalue() == "" and again == data


def test_env_var_names_the_directory(prepared, monkeypatch):
    root, data, _ = prepared
    monkeypatch.setenv(imagenet.ENV_VAR, root)
    assert imagenet.load(None) == data


def test_train_batches_shapes_dtypes_ranges_and_seeding(prepared):
    _, data, _ = prepared
    first = [next(imagenet.train_batches(data, seed, 8)) for seed in (0, 0, 1)]
    batch = first[0]
    assert set(batch) == {"x", "y"}
    assert batch["x"].shape == (8, 224, 224, 3) and batch["x"].dtype == np.float32
    assert batch["y"].shape == (8,) and batch["y"].dtype == np.int32
    assert set(batch["y"].tolist()) <= set(range(len(SYNSETS)))  # the first synsets of labels.txt
    x = batch["x"]
    assert np.isfinite(x).all()
    # Normalised pixels: (p/255 - mean)/std lies in [-2.12, 2.64] for p in [0, 255] (+ bicubic overshoot).
    assert -2.5 < x.min() < 0 < x.max() < 3.0
    assert x.std() > 0.1
    np.testing.assert_array_equal(first[0]["x"], first[1]["x"])  # a function of the seed only
    np.testing.assert_array_equal(first[0]["y"], first[1]["y"])
    assert not np.array_equal(first[0]["x"], first[2]["x"])
    # Endless: more batches than one epoch holds (24 images / 8 = 3 per epoch).
    it = imagenet.train_batches(data, 0, 8, image_size=32)
    assert all(next(it)["x"].shape == (8, 32, 32, 3) for _ in range(5))


def test_eval_center_crop_is_deterministic_padded_and_labelled(prepared):
    _, data, _ = prepared
    passes = [list(imagenet.eval_batches(data, "validation", 4)) for _ in range(2)]
    assert len(passes[0]) == math.ceil(NUM_VAL / 4)
    for a, b in zip(*passes):
        for key in ("x", "y", "mask"):
            np.testing.assert_array_equal(a[key], b[key])
    for batch in passes[0]:
        assert batch["x"].shape == (4, 224, 224, 3) and batch["x"].dtype == np.float32
        assert batch["y"].dtype == np.int32 and batch["mask"].dtype == np.float32
    last = passes[0][-1]
    np.testing.assert_array_equal(last["mask"], [1, 1, 0, 0])
    assert not last["x"][2:].any()
    # Labels: tfds gives the i-th sorted validation file the i-th line of its validation_labels.txt.
    import tensorflow_datasets as tfds

    info = tfds.builder("imagenet2012", data_dir=data.tfds_dir).info
    with open(os.path.join(os.path.dirname(tfds.__file__), "datasets", "imagenet2012",
                           "validation_labels.txt")) as f:
        expected = [info.features["label"].str2int(s) for s in f.read().split()[:NUM_VAL]]
    got = np.concatenate([b["y"][b["mask"] > 0] for b in passes[0]])
    assert sorted(got.tolist()) == sorted(expected)
    # 'test': the train-distribution split (here the whole 24-image train split), same treatment.
    test = list(imagenet.eval_batches(data, "test", 4))
    assert sum(b["mask"].sum() for b in test) == NUM_TRAIN


def test_center_crop_formula():
    """preprocess_eval == decode, slice the center square of floor(0.875·min side), bicubic, normalise."""
    import tensorflow as tf
    from PIL import Image

    img = (np.random.default_rng(0).uniform(0, 255, (120, 200, 3))).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95, subsampling=0)  # 4:4:4: no chroma
    # upsampling, whose edge handling differs between a cropped and a full decode
    got = imagenet.preprocess_eval(tf.constant(buf.getvalue()), 64).numpy()
    decoded = tf.io.decode_jpeg(buf.getvalue(), channels=3)
    side = int(0.875 * 120)  # 105
    top, left = (120 - side + 1) // 2, (200 - side + 1) // 2
    crop = tf.image.resize(decoded[top:top + side, left:left + side], [64, 64], method="bicubic").numpy()
    want = (crop - 255 * np.array(imagenet.MEAN_RGB)) / (255 * np.array(imagenet.STDDEV_RGB))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_hosts_share_the_splits(prepared):
    """Simulated 3 hosts: eval shares are disjoint, cover the split, and have equal batch counts;
    each host's train batch is global // 3 examples."""
    _, data, _ = prepared
    shares = [list(imagenet.eval_batches(data, "validation", 2, 16, process_index=i, process_count=3))
              for i in range(3)]
    assert [len(s) for s in shares] == [math.ceil(math.ceil(NUM_VAL / 3) / 2)] * 3  # 2 batches each
    assert sum(b["mask"].sum() for s in shares for b in s) == NUM_VAL
    whole = list(imagenet.eval_batches(data, "validation", NUM_VAL, 16))
    rows = lambda batches: sorted(map(bytes, np.concatenate(  # noqa: E731
        [b["x"][b["mask"] > 0].reshape(int(b["mask"].sum()), -1) for b in batches])))
    assert rows([b for s in shares for b in s]) == rows(whole)
    batch = next(imagenet.train_batches(data, 0, 6, 16, process_index=1, process_count=3))
    assert batch["x"].shape == (2, 16, 16, 3)
    with pytest.raises(UserError, match="not divisible"):
        next(imagenet.train_batches(data, 0, 7, 16, process_index=0, process_count=3))


def test_random_crop_falls_back_to_the_center_crop():
    """No box of aspect ratio [3/4, 4/3] covering >= 10% fits a 2x200 image: the sampler returns the
    whole image and the pipeline takes the eval center crop, as the reference pipelines do."""
    import tensorflow as tf
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (2, 200, 3), np.uint8)).save(buf, "JPEG")
    image = tf.constant(buf.getvalue())
    for s in range(5):
        got = imagenet.decode_and_random_crop(image, tf.constant([s, 7], tf.int64), 16)
        np.testing.assert_array_equal(got.numpy(), imagenet.decode_and_center_crop(image, 16).numpy())


# --- (b) the papers' numbers --------------------------------------------------------------------


def test_workload_numbers_match_the_papers():
    wl = ImagenetResNet50()
    assert wl.name in workload_names() and ImagenetResNet50Cosine6000.name in workload_names()
    assert (wl.step_budget, wl.global_batch_size, wl.micro_batch_size) == (2512, 32768, 64)
    assert wl.target == 0.759 and wl.metric == "accuracy" and wl.direction.value == "maximize"
    assert (wl.eval_batch_size, wl.input_shape) == (1000, (224, 224, 3))
    # MLPerf evaluates every 4 epochs; 2,512 steps are "64 epochs" (Nado et al. footnote 8, App. C.4).
    assert wl.eval_every_steps == 4 * 2512 // 64 == 157 and 2512 // 157 == 16 and 2512 % 157 == 0
    assert abs(157 * 32768 / 1_281_167 - 4) < 0.02  # ~4 true epochs of the 1,281,167 images
    assert [(p.steps, p.global_batch_size) for p in wl.phases] == [(2512, 32768)]
    assert wl.knobs == {"label_smoothing": 0.1, "bn_momentum": 0.9, "bn_epsilon": 1e-5, "gamma0": 0.0,
                        "resnet_version": 1.5, "virtual_batch_size": 64}
    # Nado Config A (Table 6) lies inside the allowed ranges.
    config_a = {"label_smoothing": 0.15, "bn_momentum": 0.94, "bn_epsilon": 4e-6, "gamma0": 0.4138}
    assert validate_knobs(wl.KNOBS, config_a, wl.name) == {**wl.knobs, **config_a}
    assert get_workload("imagenet_resnet50", config_a).knobs == {**wl.knobs, **config_a}
    with pytest.raises(UserError, match="outside its allowed range"):
        get_workload("imagenet_resnet50", {"bn_momentum": 0.1})

    cos = get_workload("imagenet_resnet50_cosine6000")
    assert isinstance(cos, ImagenetResNet50Cosine6000)
    assert (cos.step_budget, cos.global_batch_size, cos.micro_batch_size) == (6000, 32768, 64)
    assert cos.target == 0.759
    assert cos.eval_every_steps == 157
    assert cos.knobs == {**wl.knobs, "gamma0": 1.0}  # Nado Section 4: "we set γ0 = 1.0"


def test_resnet50_parameters_are_typed_and_counted():
    wl = ImagenetResNet50()
    boxed = jax.eval_shape(lambda r: wl.model.init(r, jax.numpy.zeros((1, 224, 224, 3)), train=False),
                           jax.random.PRNGKey(0))
    params, types = split_param_types(boxed["params"])  # raises if any parameter lacks a ParamType
    assert sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params)) == 25_557_032
    counts: dict[ParamType, int] = {}
    for t in jax.tree.leaves(types, is_leaf=lambda x: isinstance(x, ParamType)):
        counts[t] = counts.get(t, 0) + 1
    # 53 convolutions (49 + 4 projections), 53 batch norms, one dense layer.
    assert counts == {ParamType.CONV_WEIGHT: 53, ParamType.BN_SCALE: 53, ParamType.BN_BIAS: 53,
                      ParamType.WEIGHT: 1, ParamType.BIAS: 1}


# --- (c) one harness step at the real architecture -----------------------------------------------


@pytest.mark.slow
def test_one_step_and_eval_through_the_harness(prepared, tmp_path):
    root, _, _ = prepared
    # Real ResNet-50; global batch 8 in two ghost-BN micro-batches of 4. Images of 64x64 instead of
    # 224x224 (same parameters: global average pooling): at 224 this test took ~100 s on 2 CPU cores
    # (eager init ~20 s, compile ~35 s, step and 5 eval batches ~15 s), at 64 about half of that.
    workload = ImagenetResNet50({"virtual_batch_size": 4}, global_batch_size=8, eval_batch_size=8,
                                image_size=64)
    path = str(tmp_path / "r.db")
    sweep = Sweep(plan.build(workload, "nesterov", budget=1),
                  RunOptions(results=path, data_dir=root, progress=False))
    conn = store.connect(path)
    try:
        summary = sweep.run_seed(conn, 0)
    finally:
        conn.close()
    assert summary.status == "completed" and summary.steps_done == 1
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    run = db.execute("SELECT * FROM runs").fetchone()
    evals = db.execute("SELECT * FROM evals").fetchall()
    db.close()
    assert (run["workload"], run["status"], run["target"], run["step_budget"]) == \
        ("imagenet_resnet50", "completed", 0.759, 1)
    assert len(evals) == 1 and evals[0]["step"] == 1
    row = evals[0]
    assert all(math.isfinite(row[k]) for k in ("train_loss", "valid_loss", "test_loss"))
    for key in ("train_metric", "valid_metric", "test_metric"):
        assert 0.0 <= row[key] <= 1.0
    # Accuracies are counts over the real (unpadded) examples: multiples of 1/10 and 1/24.
    assert round(row["valid_metric"] * NUM_VAL, 6).is_integer()
    assert round(row["test_metric"] * NUM_TRAIN, 6).is_integer()


# --- (d) missing data ---------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["absent", "empty", "unset", "one_tar"])
def test_missing_data_names_the_files_and_the_flag(where, tmp_path, monkeypatch):
    monkeypatch.delenv(imagenet.ENV_VAR, raising=False)
    directory: str | None = {"absent": str(tmp_path / "nope"), "empty": str(tmp_path), "unset": None,
                             "one_tar": str(tmp_path)}[where]
    if where == "one_tar":
        (tmp_path / imagenet.VAL_TAR).write_bytes(b"")
    with pytest.raises(DataError) as err:
        get_workload("imagenet_resnet50").load_data(directory)
    message = str(err.value)
    assert "\n" not in message
    assert "ILSVRC2012_img_train.tar" in message and "ILSVRC2012_img_val.tar" in message
    assert "--data_dir" in message and "IMAGENET_DIR" in message and "image-net.org" in message


def test_unsupported_tfds_version_is_a_data_error(tmp_path):
    (tmp_path / "imagenet2012" / "2.0.1").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no complete imagenet2012 version 5\.1\.0 or 5\.0\.0 "
                       r"\(found: 2\.0\.1\)"):
        imagenet.load(str(tmp_path))


def test_corrupt_tars_are_a_data_error(tmp_path):
    for name in (imagenet.TRAIN_TAR, imagenet.VAL_TAR):
        (tmp_path / name).write_bytes(b"this is not a tar archive")
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(DataError) as err:
        imagenet.load(str(tmp_path))
    assert "\n" not in str(err.value) and "ILSVRC2012_img_train.tar" in str(err.value)
