"""pydocs_bert: reST cleaning and sentences (rst_prose), the held-out split, the records through the
real reader (masking and NSP statistics; bert_instances), the cache key, the workload's
budget/target and record shapes, and one CLI run."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import sqlite3
from unittest import mock

import numpy as np
import pytest

from harness.spec import DataError
from tests.conftest import run_cli
from workloads.data import pretraining_records as records
from workloads.data import pydocs, rst_prose

# The records are TFRecords (the full-scale format): building them needs TensorFlow.
pytest.importorskip("tensorflow", reason="needs the fullscale extra: pip install -e '.[fullscale]'")
pytestmark = pytest.mark.fullscale

WORDS = ("the module function returns a value object list when called with an argument each "
         "time python interpreter reads file data from standard input and writes output string "
         "class method attribute error raised if type is not valid number of items in sequence").split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    return " ".join(words).capitalize() + "."


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    """80 small .rst.txt files (3 sections of 3 paragraphs of prose each, plus markup to drop)."""
    root = tmp_path_factory.mktemp("pydocs_src")
    rng = random.Random(0)
    for i in range(80):
        parts = []
        for s in range(3):
            parts.append(f"Section {s}\n=========\n")
            for _ in range(3):
                parts.append(" ".join(_sentence(rng) for _ in range(4)) + "\n")
            parts.append(".. code-block:: python\n\n   x = compute(1, 2)\n")
        sub = root / ("library" if i % 2 else "tutorial")
        sub.mkdir(exist_ok=True)
        (sub / f"doc{i:02d}.rst.txt").write_text("\n".join(parts))
    return str(root)


SMALL = pydocs.BuildConfig(vocab_size=300, dupe_factor=2, eval_dupe_factor=2, train_shards=2,
                           held_out_fraction=0.1)


# --- cleaning and sentences ---------------------------------------------------------------------


def test_clean_rst_keeps_prose_and_drops_markup() -> None:
    text = """\
:mod:`json` --- JSON encoder and decoder
========================================

.. module:: json
   :synopsis: Encode and decode the JSON format.

**Source code:** :source:`Lib/json/__init__.py`

The :func:`~json.dumps` function serializes an object to a string, see :ref:`the guide <guide>` and
`RFC 7159 <https://tools.ietf.org/html/rfc7159>`_ for details [#]_.

Encoding basic Python object hierarchies is shown in the example::

    >>> import json
    >>> json.dumps(['foo', {'bar': ('baz', None, 1.0, 2)}])

.. code-block:: python

   def f(x):
       return x * 2

.. note::

   This module does not handle ``NaN`` values in a strict way when told so.

.. |version| replace:: 3.11

.. This comment should never appear in any output text.

=====  =====
Col A  Col B
=====  =====
cell   other value cells here
=====  =====

* A bullet item that is written as an ordinary English sentence here.
"""
    sections = rst_prose.clean_rst(text)
    prose = " ".join(p for s in sections for p in s)
    assert "The dumps function serializes an object to a string, see the guide and RFC 7159 for details." in prose
    assert "Encoding basic Python object hierarchies is shown in the example:" in prose
    assert "This module does not handle NaN values in a strict way when told so." in prose
    assert "A bullet item that is written as an ordinary English sentence here." in prose
    for dropped in ("import json", "def f", "return x", "comment", "Col A", "cell", "synopsis",
                    "=====", ":func:", "``", "`", "<https", "[#]", "replace", "JSON encoder and decoder"):
        assert dropped not in prose, dropped


def test_clean_inline_roles() -> None:
    assert rst_prose.clean_inline(":func:`len`") == "len"
    assert rst_prose.clean_inline(":meth:`~str.join`") == "join"
    assert rst_prose.clean_inline(":class:`!Foo`") == "Foo"
    assert rst_prose.clean_inline(":ref:`text <target>`") == "text"
    assert (rst_prose.clean_inline("a *b* and **c** and ``d`` and `e`_ and foo_.")
            == "a b and c and d and e and foo.")
    assert rst_prose.clean_inline("the :meth:`__abs__` method") == "the __abs__ method"


def test_split_sentences() -> None:
    para = ("Python is a language, e.g. for scripting. It reads files! Does it? Yes. "
            "See section 3. Version 2 differs.")
    assert rst_prose.split_sentences(para) == [
        "Python is a language, e.g. for scripting.", "It reads files!", "Does it?", "Yes.",
        "See section 3.", "Version 2 differs."]


def test_held_out_split_is_deterministic_and_disjoint(corpus: str) -> None:
    rels = pydocs.find_sources(corpus)
    held = [r for r in rels if pydocs.is_held_out(r, 0.1)]
    train = [r for r in rels if not pydocs.is_held_out(r, 0.1)]
    assert held and train and not set(held) & set(train) and len(held) + len(train) == len(rels)
    assert held == [r for r in rels if pydocs.is_held_out(r, 0.1)]  # stable: sha256, not hash()
    assert pydocs.is_held_out("library/os.rst.txt", 0.05) is False  # pinned value of the sha256 rule
    assert 0.01 < sum(pydocs.is_held_out(f"f{i}", 0.05) for i in range(10_000)) / 10_000 < 0.09


# --- records, cache -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(corpus: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("pydocs_cache"))
    return pydocs.ensure_cache(root, SMALL, source=corpus, progress=False)


def _read_all(path: str, seq_len: int, part: str) -> dict[str, np.ndarray]:
    files = records.find_files(path, seq_len, part)
    batches = list(records.eval_batches(files, seq_len, SMALL.max_predictions(seq_len), 64, "validation"))
    batches += list(records.eval_batches(files, seq_len, SMALL.max_predictions(seq_len), 64, "test"))
    out = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    keep = out["mask"] > 0
    return {k: v[keep] for k, v in out.items()}


def test_records_round_trip_with_valid_masking(built: str, corpus: str) -> None:
    vocab = [line.rstrip("\n") for line in open(os.path.join(built, "vocab.txt"))]
    ids = {t: vocab.index(t) for t in pydocs.SPECIAL_TOKENS}
    assert ids["[PAD]"] == 0
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(os.path.join(built, "tokenizer.json"))
    for seq_len, part in ((64, "train"), (128, "train"), (128, "eval")):
        data = _read_all(built, seq_len, part)
        n = len(data["input_ids"])
        assert n > 50
        assert (data["input_ids"][:, 0] == ids["[CLS]"]).all()
        lengths = data["input_mask"].sum(1)
        assert (lengths <= seq_len).all() and (data["input_ids"][data["input_mask"] == 0] == 0).all()
        weights = data["masked_lm_weights"]
        predicted = weights.sum(1)
        non_special = lengths - 3
        assert 0.12 < predicted.sum() / non_special.sum() < 0.19  # round(0.15 * len) incl. specials
        assert predicted.max() <= SMALL.max_predictions(seq_len)
        rows, cols = np.nonzero(weights)
        positions = data["masked_lm_positions"][rows, cols]
        at = data["input_ids"][rows, positions]
        labels = data["masked_lm_ids"][rows, cols]
        assert not np.isin(labels, [ids["[CLS]"], ids["[SEP]"], ids["[PAD]"]]).any()
        mask_frac, same_frac = (at == ids["[MASK]"]).mean(), (at == labels).mean()
        assert abs(mask_frac - 0.8) < 0.04 and abs(same_frac - 0.1) < 0.04  # random: the rest
        nsp = data["next_sentence_labels"].mean()
        assert 0.35 < nsp < 0.7, nsp
    # eval records come from held-out files only: their text is not in the training documents
    assert json.load(open(os.path.join(built, "stats.json")))["held_out_files"]
    text = tokenizer.decode([int(t) for t in data["input_ids"][0] if t])
    assert text


def test_cache_key_and_reuse(corpus: str, built: str, tmp_path: str) -> None:
    rels = pydocs.find_sources(corpus)
    key = pydocs.cache_key(corpus, rels, SMALL)
    assert os.path.basename(built) == key
    for change in ({"vocab_size": 301}, {"dupe_factor": 3}, {"seed": 1}, {"masked_lm_prob": 0.2},
                   {"train_seq_lens": (32, 128)}, {"code_version": pydocs.CODE_VERSION + 1}):
        assert pydocs.cache_key(corpus, rels, dataclasses.replace(SMALL, **change)) != key, change
    # another tokenizers release may train another vocabulary: never reuse its cache
    with mock.patch.object(pydocs, "tokenizers_version", lambda: "0.0.1"):
        assert pydocs.cache_key(corpus, rels, SMALL) != key
    root = os.path.dirname(built)
    stamp = os.path.getmtime(os.path.join(built, "stats.json"))
    assert pydocs.ensure_cache(root, SMALL, source=corpus, progress=False) == built  # reused
    assert os.path.getmtime(os.path.join(built, "stats.json")) == stamp
    assert not [d for d in os.listdir(root) if d.startswith(".building")]  # no temp dirs left
    # a changed input file changes the key
    copy = os.path.join(tmp_path, "src")
    import shutil

    shutil.copytree(corpus, copy)
    with open(os.path.join(copy, rels[0]), "a") as f:
        f.write("\nOne more sentence of ordinary prose is appended here.\n")
    assert pydocs.cache_key(copy, rels, SMALL) != key


def test_fixed_vocabulary_builds_are_identical(corpus: str, built: str, tmp_path: str) -> None:
    """With a vocabulary file two builds give the same records (a trained vocabulary may not:
    huggingface/tokenizers#1794), and the key depends on the file's contents, not its path."""
    import shutil

    vocab = os.path.join(tmp_path, "v1", "vocab.txt")
    os.makedirs(os.path.dirname(vocab))
    shutil.copy(os.path.join(built, "vocab.txt"), vocab)
    cfg = dataclasses.replace(SMALL, vocab_file=vocab)
    first = pydocs.ensure_cache(os.path.join(tmp_path, "a"), cfg, source=corpus, progress=False)
    second = pydocs.ensure_cache(os.path.join(tmp_path, "b"), cfg, source=corpus, progress=False)
    assert os.path.basename(first) == os.path.basename(second)
    for seq_len, part in ((64, "train"), (128, "eval")):
        x, y = _read_all(first, seq_len, part), _read_all(second, seq_len, part)
        assert all(np.array_equal(x[k], y[k]) for k in x), (seq_len, part)
    rels = pydocs.find_sources(corpus)
    moved = os.path.join(tmp_path, "elsewhere.txt")
    shutil.copy(vocab, moved)
    assert pydocs.cache_key(corpus, rels, dataclasses.replace(cfg, vocab_file=moved)) == os.path.basename(first)
    with open(moved, "a") as f:
        f.write("extra\n")
    assert pydocs.cache_key(corpus, rels, dataclasses.replace(cfg, vocab_file=moved)) != os.path.basename(first)


def test_bad_vocabulary_file_is_a_one_line_error(corpus: str, built: str, tmp_path: str) -> None:
    missing = dataclasses.replace(SMALL, vocab_file=os.path.join(tmp_path, "nope.txt"))
    with pytest.raises(DataError, match="not found.*--train_vocab"):
        pydocs.build(os.path.join(tmp_path, "out1"), corpus, pydocs.find_sources(corpus), missing, False)
    no_specials = os.path.join(tmp_path, "plain.txt")
    with open(no_specials, "w") as f:
        f.write("the\nof\n##s\n")
    with pytest.raises(DataError, match="lacks the special token.*MASK"):
        pydocs.build(os.path.join(tmp_path, "out2"), corpus, pydocs.find_sources(corpus),
                     dataclasses.replace(SMALL, vocab_file=no_specials), False)


@pytest.mark.cli
def test_train_vocab_cli_writes_a_loadable_vocabulary(corpus: str, tmp_path: str) -> None:
    out = os.path.join(tmp_path, "vocab.txt")
    proc = run_cli("workloads.data.pydocs", f"--train_vocab={out}", f"--source={corpus}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    tokens = open(out).read().split("\n")[:-1]
    assert tokens[:5] == list(pydocs.SPECIAL_TOKENS) and len(tokens) == len(set(tokens)) > 100
    assert pydocs.load_tokenizer(out).encode("the function", add_special_tokens=False).ids


def test_workload_vocabulary_is_the_shipped_file() -> None:
    from workloads.pydocs_bert import BUILD, VOCAB_FILE

    tokens = open(VOCAB_FILE).read().split("\n")[:-1]
    assert BUILD.vocab_file == VOCAB_FILE and len(tokens) == BUILD.vocab_size == len(set(tokens))
    assert set(pydocs.SPECIAL_TOKENS) <= set(tokens)


# --- workload -----------------------------------------------------------------------------------


def test_workload_budget_and_target_from_targets_json() -> None:
    from workloads import get_workload
    from workloads.pydocs_bert import PHASE_DESIGN, split_budget
    from workloads.targets import TARGETS_FILE

    entry = json.load(open(TARGETS_FILE))["pydocs_bert"]
    wl = get_workload("pydocs_bert")
    assert wl.step_budget == entry["step_budget"] and wl.target == entry["target"]
    assert [p.steps for p in wl.phases] == split_budget(entry["step_budget"])
    assert [(p.global_batch_size, p.seq_len) for p in wl.phases] == [(b, t) for _, b, t in PHASE_DESIGN]
    assert wl.metric == "masked_lm_accuracy" and wl.config.vocab_size == pydocs.BuildConfig().vocab_size


def test_workload_batches_have_the_shapes_it_compiles_for(built: str) -> None:
    """abstract_batch (what the harness compiles), the training reader and the padded evaluation
    batches agree: the record shapes come from records.feature_shapes, max_predictions from the
    build's config (the generic reader holds only the official data's)."""
    from workloads.bert import BertData
    from workloads.pydocs_bert import BUILD, PydocsBert

    wl = PydocsBert(phase_batch_sizes=(4, 2), micro_batch_sizes=(4, 2), eval_batch_size=8)
    assert [wl.max_predictions(p.seq_len) for p in wl.phases] == [10, 20] == \
        [BUILD.max_predictions(64), BUILD.max_predictions(128)]
    assert 64 not in records.MAX_PREDICTIONS
    files = {T: tuple(records.find_files(built, T, "train")) for T in (64, 128)}
    eval_files = tuple(records.find_files(built, 128, "eval"))
    data = BertData(files, eval_files, records.count_records(eval_files, 128, 20))
    for phase, p in enumerate(wl.phases):
        batch = next(wl.train_batches(data, 0, phase))
        abstract = wl.abstract_batch(p.global_batch_size, phase)
        assert {k: (v.shape, v.dtype) for k, v in batch.items()} == \
            {k: (v.shape, v.dtype) for k, v in abstract.items()}, phase
    shapes = {(k, v.shape[1:], v.dtype) for b in wl.eval_batches(data, "test")
              for k, v in b.items() if k != "mask"}
    assert shapes == {(k, v.shape[1:], v.dtype) for k, v in wl.abstract_batch(1, 1).items()}


def test_balanced_eval_batch_size() -> None:
    from workloads.pydocs_bert import balanced_batch_size

    assert balanced_batch_size(359, 116) == 90  # 4 x 90 = 360: one row of padding, not 105
    assert balanced_batch_size(347, 116) == 116  # 3 x 116 = 348
    assert balanced_batch_size(5, 116) == 5 and balanced_batch_size(0, 116) == 1
    for rows in range(1, 400):
        b = balanced_batch_size(rows, 116)
        batches = math.ceil(rows / b)
        assert b <= 116 and batches == math.ceil(rows / 116) and batches * b - rows < batches


def test_fingerprint_warning_names_both_fingerprints(tmp_path: str) -> None:
    from workloads import targets

    path = os.path.join(tmp_path, "targets.json")
    with open(path, "w") as f:
        json.dump({"pydocs_bert": {"target": 0.1, "data_fingerprint": "aaaa"}, "other": {"target": 1}}, f)
    with mock.patch.object(targets, "TARGETS_FILE", path):
        assert targets.fingerprint_warning("pydocs_bert", "aaaa") is None
        assert targets.fingerprint_warning("pydocs_bert", None) is None
        assert targets.fingerprint_warning("other", "bbbb") is None  # no fingerprint recorded
        warning = targets.fingerprint_warning("pydocs_bert", "bbbb")
    assert warning is not None and "aaaa" in warning and "bbbb" in warning and "\n" not in warning
    assert targets.data_fingerprint(object()) is None


@pytest.mark.slow
@pytest.mark.cli
def test_harness_cli_short_run_records_evals(corpus: str, tmp_path: str) -> None:
    db = os.path.join(tmp_path, "r.db")
    proc = run_cli("harness", "run", "--workload=pydocs_bert", "--submission=adamw", "--budget=4",
                   "--config=pydocs_bert", '--hparams={"learning_rate": 0.001}',
                   "--seeds=0", f"--results={db}", f"--data_dir={tmp_path}/cache",
                   env={"PYDOCS_DIR": corpus})
    assert proc.returncode == 0, proc.stderr[-3000:]
    with sqlite3.connect(db) as c:
        evals = c.execute("SELECT step, valid_metric, test_metric FROM evals ORDER BY step").fetchall()
        status = c.execute("SELECT status FROM runs").fetchall()
    assert status == [("completed",)]
    with sqlite3.connect(db) as c:
        (env, label, hparams) = c.execute("SELECT environment, config_label, hparams FROM runs").fetchone()
    assert label == "pydocs_bert learning_rate=0.001"  # the named config and what was set on top
    assert json.loads(hparams)["learning_rate"] == 0.001 and json.loads(hparams)["eps"] == 0.001
    assert json.loads(env)["data_fingerprint"] in os.listdir(os.path.join(tmp_path, "cache"))
    steps = [e[0] for e in evals]
    assert steps[-1] == 4 and 3 in steps  # end of phase 1 (3 steps) and of phase 2
    assert all(0 <= v <= 1 and 0 <= t <= 1 for _, v, t in evals)
