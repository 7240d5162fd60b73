"""BERT pretraining: the official record format through the real tf.data readers, the papers' phases,
declared parameter types and size of BERT-Large, one harness step per phase, and data errors."""

from __future__ import annotations

import collections
import os
import sqlite3
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from harness.spec import DataError, Direction, ParamType, split_param_types
from workloads import get_workload
from workloads.bert import BertLarge32k, BertLarge65k, BertLarge65k32k
from workloads.data import pretraining_records as records
from workloads.models.bert import BertConfig, BertPretraining, param_count

pytest.importorskip("tensorflow", reason="needs the fullscale extra: pip install -e '.[fullscale]'")
pytestmark = pytest.mark.fullscale

VOCAB = 30522
#: (sequence length, part, records per file): two training files at 128 to exercise interleaving.
FILES = {(128, "train"): (12, 9), (512, "train"): (6,), (512, "eval"): (11,)}
BERT_LARGE_PARAMS = 336_226_108  # computed by eval_shape, checked by hand in the test below


def make_examples(n: int, seq_len: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Random valid examples, unpadded (write_records pads): L real tokens, k < P masked positions."""
    max_pred = records.MAX_PREDICTIONS[seq_len]
    out = []
    for _ in range(n):
        length = int(rng.integers(max_pred + 2, seq_len + 1))
        k = int(rng.integers(1, max_pred + 1))
        out.append({
            "input_ids": rng.integers(1, VOCAB, length), "input_mask": np.ones(length, np.int64),
            "segment_ids": (np.arange(length) >= length // 2).astype(np.int64),
            "masked_lm_positions": np.sort(rng.choice(np.arange(1, length), k, replace=False)),
            "masked_lm_ids": rng.integers(1, VOCAB, k), "masked_lm_weights": np.ones(k, np.float32),
            "next_sentence_labels": int(rng.integers(0, 2))})
    return out


def padded(example: dict[str, np.ndarray], seq_len: int) -> dict[str, np.ndarray]:
    """What the reader must return for `example`: zero-padded int32 / float32 arrays."""
    max_pred = records.MAX_PREDICTIONS[seq_len]
    out = {}
    for key, value in example.items():
        length = {"next_sentence_labels": 1}.get(key, max_pred if key.startswith("masked") else seq_len)
        array = np.asarray(value).reshape(-1)
        dtype = np.float32 if key == "masked_lm_weights" else np.int32
        out[key] = np.pad(array, (0, length - array.size)).astype(dtype)
    out["next_sentence_labels"] = out["next_sentence_labels"][0]
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[tuple[int, str], list[dict]]]:
    """(data_dir in the documented layout, the examples written per (seq_len, part) in file order)."""
    root = str(tmp_path_factory.mktemp("bert_data"))
    rng = np.random.default_rng(0)
    written: dict[tuple[int, str], list[dict]] = {}
    for (seq_len, part), sizes in FILES.items():
        directory = os.path.join(root, f"seq_len_{seq_len}", part)
        os.makedirs(directory)
        written[(seq_len, part)] = []
        for i, n in enumerate(sizes):
            examples = make_examples(n, seq_len, rng)
            path = os.path.join(directory, f"part-{i:05d}.tfrecord")
            assert records.write_records(path, examples, seq_len, records.MAX_PREDICTIONS[seq_len]) == n
            written[(seq_len, part)] += examples
    return root, written


def rows(batches: Iterator[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    return [{k: v[i] for k, v in b.items()} for b in batches for i in range(len(b["input_ids"]))]


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for key, value in want.items():
        assert got[key].dtype == value.dtype, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)


# --- (a) record round trip through the real readers --------------------------------------------


def test_eval_round_trip_padding_and_splits(corpus: tuple) -> None:
    root, written = corpus
    files = records.find_files(root, 512, "eval")
    expected = [padded(e, 512) for e in written[(512, "eval")]]
    seen = []
    for split, parity in (("validation", 0), ("test", 1)):
        batches = list(records.eval_batches(files, 512, 80, 4, split, num_records=len(expected)))
        assert all(b["input_ids"].shape == (4, 512) and b["mask"].dtype == np.float32 for b in batches)
        got = rows(iter(batches))
        real = [r for r in got if r["mask"] == 1]
        # Deterministic split by record index: even -> validation, odd -> test, in file order.
        want = expected[parity::2]
        assert len(real) == len(want) and len(batches) == -(-len(want) // 4)
        for r, w in zip(real, want):
            assert_same(r, w)
        pad = [r for r in got if r["mask"] == 0]
        assert pad and all(r["masked_lm_weights"].sum() == 0 and r["input_ids"].sum() == 0 for r in pad)
        seen += [tuple(r["input_ids"]) for r in real]
    assert sorted(seen) == sorted(tuple(e["input_ids"]) for e in expected)  # disjoint and covering
    assert records.count_records(files, 512, 80) == len(expected)


def test_eval_batches_are_equal_in_number_on_every_host(corpus: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    root, written = corpus
    files, n = records.find_files(root, 512, "eval"), len(written[(512, "eval")])
    monkeypatch.setattr(jax, "process_count", lambda: 4)
    shares = []
    for host in range(4):
        monkeypatch.setattr(jax, "process_index", lambda host=host: host)
        shares.append(list(records.eval_batches(files, 512, 80, 1, "validation", num_records=n)))
    assert len({len(s) for s in shares}) == 1  # 6 validation records over 4 hosts: 2 batches each
    real = sorted(tuple(r["input_ids"]) for s in shares for r in rows(iter(s)) if r["mask"] == 1)
    assert real == sorted(tuple(padded(e, 512)["input_ids"]) for e in written[(512, "eval")][0::2])


def test_train_reader_shapes_determinism_and_host_shares(corpus: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    root, written = corpus
    files = records.find_files(root, 128, "train")
    assert len(files) == 2
    by_ids = {tuple(padded(e, 128)["input_ids"]): padded(e, 128) for e in written[(128, "train")]}
    take = lambda seed, n=8, **kw: [b for b, _ in zip(records.train_dataset(  # noqa: E731
        files, 128, 20, 5, seed, **kw), range(n))]
    a, b, c = take(0), take(0), take(1)
    assert all(x["input_ids"].shape == (5, 128) and x["input_ids"].dtype == np.int32
               and x["masked_lm_weights"].dtype == np.float32 and x["next_sentence_labels"].shape == (5,)
               for x in a)
    for r in rows(iter(a)):  # every row is one written example, intact
        assert_same(r, by_ids[tuple(r["input_ids"])])
    # The record shuffle runs over the repeated stream (as run_pretraining.py): 200 rows of the
    # seeded stream cover all 21 records.
    assert {tuple(r["input_ids"]) for r in rows(iter(take(0, 40)))} == set(by_ids)
    assert all(np.array_equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, b))
    assert not all(np.array_equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, c))
    # Host shares: record i of the (seeded) stream goes to host i mod 2, so without the record
    # shuffle the two hosts' streams interleave back into the single-host stream.
    single = rows(iter(take(3, 4, shuffle_buffer=1)))
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    host = []
    for i in range(2):
        monkeypatch.setattr(jax, "process_index", lambda i=i: i)
        host.append(rows(iter(take(3, 2, shuffle_buffer=1))))
    assert [tuple(r["input_ids"]) for r in single[:20]] == \
        [tuple(r["input_ids"]) for pair in zip(host[0], host[1]) for r in pair]


def test_abstract_batch_is_what_the_readers_yield(corpus: tuple) -> None:
    """The harness compiles for abstract_batch: the training and evaluation batches have exactly
    its shapes and dtypes (one source: records.feature_shapes with the workload's max_predictions)."""
    root, _ = corpus
    wl = BertLarge32k(num_layers=1, hidden_size=64, vocab_size=VOCAB, phase_batch_sizes=(4, 2),
                      micro_batch_sizes=(4, 2), eval_batch_size=3)
    data = wl.load_data(root)
    signature = lambda batch: {k: (v.shape, np.dtype(v.dtype)) for k, v in batch.items()}  # noqa: E731
    for phase, p in enumerate(wl.phases):
        assert signature(next(wl.train_batches(data, 0, phase))) == \
            signature(wl.abstract_batch(p.global_batch_size, phase)), p.name
    for batch in wl.eval_batches(data, "validation"):
        assert signature({k: v for k, v in batch.items() if k != "mask"}) == signature(wl.abstract_batch(3, 1))
    assert records.MAX_PREDICTIONS == {128: 20, 512: 80}  # the official data's flags only


# --- (b) the papers' phases ---------------------------------------------------------------------


@pytest.mark.parametrize("cls, phases, budget", [
    (BertLarge32k, [(14_063, 32_768, 128), (1_562, 32_768, 512)], 15_625),
    (BertLarge65k32k, [(7_037, 65_536, 128), (1_562, 32_768, 512)], 8_599),
    (BertLarge65k, [(7_037, 65_536, 128), (781, 65_536, 512)], 7_818),
])
def test_phases_match_the_papers(cls: type, phases: list, budget: int) -> None:
    wl = get_workload(cls.name)  # through the registry, with the real architecture
    assert type(wl) is cls and wl.config == BertConfig.large()
    assert [(p.steps, p.global_batch_size, p.seq_len) for p in wl.phases] == phases
    assert wl.step_budget == budget == sum(p[0] for p in phases)  # You et al. / Nado Table 4
    assert wl.global_batch_size == phases[0][1]
    assert [p.micro_batch_size for p in wl.phases] == [64, 16] and wl.micro_batch_size == 64
    assert all(p.global_batch_size % p.micro_batch_size == 0 for p in wl.phases)
    assert wl.metric == "masked_lm_accuracy" and wl.direction is Direction.MAXIMIZE and wl.target == 0.72
    assert wl.knobs == {"hidden_dropout": 0.1, "attention_dropout": 0.1}


# --- (c) parameter types and size ---------------------------------------------------------------


def test_bert_large_param_types_and_count() -> None:
    """Abstract init of the full BERT-Large (jax.eval_shape): every parameter typed, 336.2M in all."""
    cfg = BertConfig.large()
    ids = jnp.zeros((1, 8), jnp.int32)
    boxed = jax.eval_shape(lambda r: BertPretraining(cfg).init(r, ids, ids, ids, ids[:, :2], train=False),
                           jax.random.PRNGKey(0))["params"]
    params, types = split_param_types(boxed)  # raises if any parameter lacks a declared type
    flat = {jax.tree_util.keystr(p): (leaf.shape, t) for (p, leaf), t in
            zip(jax.tree_util.tree_flatten_with_path(params)[0], jax.tree.leaves(types))}
    count = sum(int(np.prod(s)) for s, _ in flat.values())
    # By hand: embeddings (30522 + 512 + 2) * 1024 + LN 2048; per layer 4 (1024^2 + 1024) attention
    # + 2 * 2048 LN + (1024 * 4096 + 4096) + (4096 * 1024 + 1024) FFN; pooler 1024^2 + 1024;
    # MLM transform 1024^2 + 1024 + LN 2048 + output bias 30522 (projection tied); NSP 2 * 1024 + 2.
    by_hand = (31_036 * 1024 + 2048 + 24 * (4 * 1_049_600 + 4096 + 4_198_400 + 4_195_328)
               + 1_049_600 + 1_049_600 + 2048 + 30_522 + 2050)
    assert count == by_hand == BERT_LARGE_PARAMS == param_count(cfg)
    print(f"BERT-Large parameters (with MLM and NSP heads): {count:,}")

    def types_of(fragment: str) -> set[ParamType]:
        return {t for path, (_, t) in flat.items() if fragment in path}

    assert types_of("embeddings']['word_embeddings") == {ParamType.EMBEDDING}
    assert types_of("_embeddings'") == {ParamType.EMBEDDING}
    for qkv in ("query", "key", "value"):
        assert types_of(f"['{qkv}']['kernel']") == {ParamType.ATTENTION_QKV}
    assert types_of("['attention']['output']['kernel']") == {ParamType.ATTENTION_OUT}
    for name in ("intermediate", "ffn_output", "pooler", "mlm_transform", "nsp_output"):
        assert types_of(f"['{name}']['kernel']") == {ParamType.WEIGHT}
    dense_biases = {t for path, (_, t) in flat.items() if path.endswith("['bias']") and "layer_norm" not in path}
    assert dense_biases | types_of("mlm_output_bias") == {ParamType.BIAS}
    assert types_of("layer_norm']['scale']") == {ParamType.LN_SCALE}
    assert types_of("layer_norm']['bias']") == {ParamType.LN_BIAS}
    counts = collections.Counter(t for _, t in flat.values())
    assert counts[ParamType.ATTENTION_QKV] == 72 and counts[ParamType.ATTENTION_OUT] == 24
    assert counts[ParamType.LN_SCALE] == counts[ParamType.LN_BIAS] == 1 + 48 + 1
    # The MLM output projection is tied: no (1024, 30522) kernel exists.
    assert [p for p, (s, _) in flat.items() if VOCAB in s] == ["['embeddings']['word_embeddings']",
                                                                "['mlm_output_bias']"]
    assert cfg.gelu_approximate is False  # exact erf GELU as the released checkpoints


def test_loss_and_sums_follow_run_pretraining() -> None:
    """train_loss = sum w·CE / (sum w + 1e-5) + mean NSP CE; eval sums weight rows by mask."""
    wl = BertLarge32k(num_layers=1, hidden_size=64, vocab_size=50)
    params, state, _ = jax.jit(lambda r: wl.init(r)[:2] + (None,))(jax.random.PRNGKey(1))
    rng = np.random.default_rng(2)
    b, t, p = 3, 16, 4
    batch = {"input_ids": rng.integers(0, 50, (b, t)).astype(np.int32),
             "input_mask": (np.arange(t) < 12).astype(np.int32)[None].repeat(b, 0),
             "segment_ids": np.zeros((b, t), np.int32),
             "masked_lm_positions": rng.integers(1, 12, (b, p)).astype(np.int32),
             "masked_lm_ids": rng.integers(0, 50, (b, p)).astype(np.int32),
             "masked_lm_weights": np.array([[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]], np.float32),
             "next_sentence_labels": np.array([0, 1, 1], np.int32)}
    mlm, nsp = jax.jit(lambda p: wl.model.apply(  # jitted: eager op-by-op dispatch is slow on CPU
        {"params": p}, batch["input_ids"], batch["input_mask"], batch["segment_ids"],
        batch["masked_lm_positions"], train=False))(params)
    ce = -np.take_along_axis(np.asarray(jax.nn.log_softmax(mlm)), batch["masked_lm_ids"][..., None], -1)[..., 0]
    w = batch["masked_lm_weights"]
    nsp_ce = -np.take_along_axis(np.asarray(jax.nn.log_softmax(nsp)), batch["next_sentence_labels"][:, None], -1)
    expected = (ce * w).sum() / (w.sum() + 1e-5) + nsp_ce.mean()
    no_dropout = BertLarge32k({"hidden_dropout": 0.0, "attention_dropout": 0.0}, num_layers=1,
                              hidden_size=64, vocab_size=50)
    loss, (new_state, sums) = jax.jit(no_dropout.train_loss)(params, state, batch, jax.random.PRNGKey(0))
    assert new_state == {} and np.isclose(float(loss), expected, rtol=1e-5)
    assert np.isclose(float(sums["loss"]), (ce * w).sum(), rtol=1e-5) and float(sums["count"]) == 6
    correct = (np.asarray(mlm).argmax(-1) == batch["masked_lm_ids"]) * w
    assert float(sums["masked_lm_accuracy"]) == correct.sum() and float(sums["nsp_count"]) == 3
    # Dropout draws from rng: different keys give different losses in training mode.
    train_loss = jax.jit(wl.train_loss)
    l1, _ = train_loss(params, state, batch, jax.random.PRNGKey(0))
    l2, _ = train_loss(params, state, batch, jax.random.PRNGKey(1))
    assert float(l1) != float(l2)
    masked = jax.jit(wl.eval_sums)(params, state, dict(batch, mask=np.array([1, 0, 1], np.float32)))
    assert float(masked["count"]) == 3 and float(masked["nsp_count"]) == 2
    assert np.isclose(float(masked["loss"]), (ce * w)[[0, 2]].sum(), rtol=1e-5)


# --- (d) one harness step per phase and an evaluation -------------------------------------------


@pytest.mark.slow
def test_one_step_per_phase_through_the_harness(corpus: tuple, tmp_path: str) -> None:
    """bert_large_32k, 1 step per phase, through harness.runner.Sweep (one compiled step per phase).

    Real vocabulary (30,522, tied head) and record format; 2 layers of width 256 (4 heads, FFN
    1,024) instead of 24 x 1,024, which on this 2-core CPU takes ~50 s of CPU for the same test.
    """
    from harness import plan, store
    from harness.runner import RunOptions, Sweep

    root, _ = corpus
    wl = BertLarge32k(num_layers=2, hidden_size=256, phase_steps=(1, 1), phase_batch_sizes=(4, 2),
                      micro_batch_sizes=(2, 2), eval_batch_size=4)
    db = f"{tmp_path}/r.db"
    sweep = Sweep(plan.build(wl, "adamw"), RunOptions(results=db, data_dir=root, progress=False))
    assert len(sweep.compiled(sweep.plan).steps) == 2
    conn = store.connect(db)
    summary = sweep.run_seed(conn, 0)
    conn.close()
    assert summary.status == "completed" and summary.steps_done == 2
    with sqlite3.connect(db) as c:
        evals = c.execute("SELECT step, train_loss, valid_metric, test_metric, valid_loss FROM evals").fetchall()
    assert [e[0] for e in evals] == [1, 2]  # the end of each phase
    for _, train_loss, valid, test, valid_loss in evals:
        # Untrained model: masked-LM loss about ln(30522) = 10.3, accuracy about 0.
        assert 8 < train_loss < 13 and 8 < valid_loss < 13 and 0 <= valid <= 1 and 0 <= test <= 1


# --- (e) data errors ----------------------------------------------------------------------------


def test_missing_data_dir_names_layout_and_flag(corpus: tuple, tmp_path: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(records.ENV_VAR, corpus[0])  # $BERT_DATA_DIR stands in for --data_dir
    assert BertLarge65k().load_data(None).num_eval_records == FILES[(512, "eval")][0]
    monkeypatch.delenv(records.ENV_VAR)
    for data_dir in (None, f"{tmp_path}/nowhere"):
        with pytest.raises(DataError, match="--data_dir") as e:
            BertLarge65k().load_data(data_dir)
        assert "seq_len_128/train" in str(e.value) and "seq_len_512/eval" in str(e.value)
        assert "\n" not in str(e.value)
    os.makedirs(f"{tmp_path}/empty/seq_len_128/train")
    with pytest.raises(DataError, match=r"seq_len_128/train/\*\.tfrecord\*.*--data_dir"):
        BertLarge65k().load_data(f"{tmp_path}/empty")


def test_corrupt_or_wrong_format_records_name_the_file(tmp_path: str) -> None:
    bad = f"{tmp_path}/bad.tfrecord"
    with open(bad, "wb") as f:
        f.write(b"this is not a TFRecord file at all")
    with pytest.raises(DataError, match="bad.tfrecord") as e:
        records.check_files([bad], 128, 20)
    assert "\n" not in str(e.value)
    seq512 = f"{tmp_path}/seq512.tfrecord"
    records.write_records(seq512, make_examples(2, 512, np.random.default_rng(0)), 512, 80)
    with pytest.raises(DataError, match="seq512.tfrecord.*max_seq_length=128"):
        records.check_files([seq512], 128, 20)  # a seq-512 file where seq-128 records belong


