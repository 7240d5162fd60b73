"""English prose from the Python 3.11 documentation (Debian `python3.11-doc`) as BERT pretraining
records: the build, its cache and the vocabulary CLI.

Pipeline (`build`): the reStructuredText sources (`*.rst.txt`) -> `rst_prose.clean_rst` (markup
removed, code dropped, prose paragraphs kept) -> documents (one per section) and sentences
(`rst_prose.split_sentences`) -> a held-out split by *file* (a stable sha256 of the relative path;
never Python's salted hash()) -> a lowercase WordPiece vocabulary: a fixed file
(`BuildConfig.vocab_file`; pydocs_bert ships one trained with HF `tokenizers` on the training
documents, see `write_trained_vocab` for why it is not retrained per build) or, without one, trained
on the training documents -> create_pretraining_data.py of google-research/bert, ported
(workloads/data/bert_instances.py): sentence pairs with next-sentence labels, 15% masking 80/10/10
-> the official TFRecord format (workloads/data/pretraining_records.write_records) in the layout
the BERT reader expects:

    <cache>/seq_len_64/train/*.tfrecord, <cache>/seq_len_128/train/*.tfrecord,
    <cache>/seq_len_128/eval/heldout.tfrecord, vocab.txt, tokenizer.json, stats.json

Cache: `<root>/<key>/`, root = the `data_dir` argument, else $PYDOCS_BERT_CACHE, else
~/.cache/largebatch-bench/pydocs_bert; key = sha256 of every input file's path and contents and of
every build parameter (BuildConfig, including CODE_VERSION; the vocabulary file by its contents) and
of the installed `tokenizers` version. The key is also the data's fingerprint: runs record it
in their environment and target-setting in reference_results/targets.json. The build writes into a temporary
sibling directory and renames it into place, so a killed build never leaves a half cache.

CLI: `python -m workloads.data.pydocs --train_vocab=PATH [--source=DIR]` writes a new vocabulary.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import importlib.metadata
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from typing import Any

from harness.spec import DataError, UserError
from workloads.data.bert_instances import InstanceConfig, create_instances, to_example
from workloads.data.common import lookup_dir
from workloads.data.rst_prose import clean_rst, split_sentences

SOURCE_ENV_VAR = "PYDOCS_DIR"
DEFAULT_SOURCE_DIR = "/usr/share/doc/python3.11/html/_sources"
CACHE_ENV_VAR = "PYDOCS_BERT_CACHE"
DEFAULT_CACHE_ROOT = os.path.join(os.path.expanduser("~"), ".cache", "largebatch-bench", "pydocs_bert")
#: Bump when the cleaning, splitting, tokenisation or instance creation changes (part of the key).
CODE_VERSION = 2  # 2: emphasis spans fixed in the cleaner (the target was set on version-1 text)
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # [PAD] = id 0 (padding of the records)


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """Every parameter of the build (all of them enter the cache key)."""

    vocab_size: int = 4096
    train_seq_lens: tuple[int, ...] = (64, 128)
    eval_seq_len: int = 128
    masked_lm_prob: float = 0.15
    dupe_factor: int = 3
    eval_dupe_factor: int = 1  # each held-out sequence evaluated once (BERT's README)
    short_seq_prob: float = 0.1
    held_out_fraction: float = 0.05
    min_frequency: int = 2
    train_shards: int = 4
    seed: int = 12345
    code_version: int = CODE_VERSION
    #: A fixed vocabulary (one token per line, id = line number, as BERT's vocab.txt); None: train
    #: one on the training documents. Its contents, not its path, enter the cache key.
    vocab_file: str | None = None

    def max_predictions(self, seq_len: int) -> int:
        """max_predictions_per_seq of the records of length T, ceil(masked_lm_prob · T): BERT's 20
        at 128 (ceil 19.2), 10 at 64 (ceil 9.6). The one source for the build and the workload."""
        return math.ceil(self.masked_lm_prob * seq_len - 1e-9)

    def instances(self, seq_len: int) -> InstanceConfig:
        """The create_pretraining_data.py flags of the records of length `seq_len`."""
        return InstanceConfig(seq_len=seq_len, max_predictions=self.max_predictions(seq_len),
                              masked_lm_prob=self.masked_lm_prob, short_seq_prob=self.short_seq_prob)


# --- sources, documents, held-out split ---------------------------------------------------------


def source_dir(explicit: str | None = None) -> str:
    """The reST sources: the argument, else $PYDOCS_DIR, else the python3.11-doc location."""
    directory = lookup_dir(explicit, SOURCE_ENV_VAR, DEFAULT_SOURCE_DIR)
    if not find_sources(directory):
        raise DataError(f"no *.rst.txt files under {directory}: install the Debian package python3.11-doc "
                        f"(scripts/install_data.sh, run by make setup) or set {SOURCE_ENV_VAR}")
    return directory


def find_sources(directory: str) -> list[str]:
    """Sorted paths (relative to `directory`) of every *.rst.txt below it."""
    if not os.path.isdir(directory):
        return []
    paths = glob.glob(os.path.join(directory, "**", "*.rst.txt"), recursive=True)
    return sorted(os.path.relpath(p, directory) for p in paths)


Document = list[str]  # sentences


def load_documents(directory: str, relpaths: Sequence[str]) -> dict[str, list[Document]]:
    """relpath -> its documents (one per section with prose), each a list of sentences."""
    out = {}
    for rel in relpaths:
        with open(os.path.join(directory, rel), encoding="utf-8", errors="replace") as f:
            sections = clean_rst(f.read())
        docs = [[s for p in section for s in split_sentences(p)] for section in sections]
        out[rel] = [d for d in docs if d]
    return out


def is_held_out(relpath: str, fraction: float) -> bool:
    """Whether file `relpath` is held out: sha256 of the path as a uniform number in [0, 1)."""
    digest = hashlib.sha256(relpath.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_by_file(by_file: dict[str, list[Document]], relpaths: Sequence[str], fraction: float
                  ) -> tuple[set[str], list[Document], list[Document]]:
    """(held-out files, training documents, held-out documents), in `relpaths` order."""
    held = {rel for rel in relpaths if is_held_out(rel, fraction)}
    train = [d for rel in relpaths if rel not in held for d in by_file[rel]]
    return held, train, [d for rel in relpaths if rel in held for d in by_file[rel]]


# --- vocabulary ---------------------------------------------------------------------------------


def load_tokenizer(vocab_file: str) -> Any:
    """The BERT WordPiece tokenizer of `vocab_file`, with the normalisation and pre-tokenisation of
    `train_tokenizer` (encoding with a fixed vocabulary is deterministic: greedy longest match)."""
    from tokenizers import BertWordPieceTokenizer

    if not os.path.isfile(vocab_file):
        raise DataError(f"vocabulary file {vocab_file} not found: restore it from the repository or "
                        "write a new one with `python -m workloads.data.pydocs --train_vocab=PATH`")
    with open(vocab_file, encoding="utf-8") as f:
        tokens = {line.rstrip("\n") for line in f}
    missing = [t for t in SPECIAL_TOKENS if t not in tokens]
    if missing:
        raise DataError(f"vocabulary file {vocab_file} lacks the special token(s) {', '.join(missing)}: "
                        "write a new one with `python -m workloads.data.pydocs --train_vocab=PATH`")
    return BertWordPieceTokenizer(vocab_file, lowercase=True, clean_text=True, strip_accents=True,
                                  handle_chinese_chars=True, wordpieces_prefix="##")


def train_tokenizer(sentences: Iterable[str], cfg: BuildConfig) -> Any:
    """A lowercase BERT WordPiece tokenizer trained with HF `tokenizers` (BERT normalisation:
    clean text, lowercase, strip accents; BERT pre-tokenisation on whitespace and punctuation)."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(lowercase=True, clean_text=True, strip_accents=True,
                                       handle_chinese_chars=True)
    tokenizer.train_from_iterator(sentences, vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS), limit_alphabet=500,
                                  wordpieces_prefix="##", show_progress=False)
    return tokenizer


# --- build + cache ------------------------------------------------------------------------------


def tokenizers_version() -> str:
    return importlib.metadata.version("tokenizers")


def cache_key(directory: str, relpaths: Sequence[str], cfg: BuildConfig) -> str:
    """sha256 over every input file (path and contents), every build parameter and the `tokenizers`
    version (16 hex digits)."""
    params: dict[str, Any] = {**dataclasses.asdict(cfg), "tokenizers": tokenizers_version()}
    if cfg.vocab_file is not None:
        with open(cfg.vocab_file, "rb") as f:
            params["vocab_file"] = hashlib.sha256(f.read()).hexdigest()
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for rel in relpaths:
        h.update(rel.encode("utf-8") + b"\0")
        with open(os.path.join(directory, rel), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


def cache_root(data_dir: str | None) -> str:
    """Where the caches are: the argument, else $PYDOCS_BERT_CACHE, else ~/.cache/largebatch-bench."""
    return lookup_dir(data_dir, CACHE_ENV_VAR, DEFAULT_CACHE_ROOT)


def _tqdm(total: int, desc: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="doc", disable=not enabled, leave=False)


def build(out_dir: str, directory: str, relpaths: Sequence[str], cfg: BuildConfig, progress: bool = True
          ) -> dict[str, Any]:
    """Build the records, vocabulary and stats.json in `out_dir` (created); returns the stats."""
    from workloads.data import pretraining_records as records

    start = time.perf_counter()
    rng = random.Random(cfg.seed)
    by_file = load_documents(directory, relpaths)
    held, train_docs, eval_docs = split_by_file(by_file, relpaths, cfg.held_out_fraction)
    if len(train_docs) < 2 or len(eval_docs) < 2:
        raise DataError(f"too few documents in {directory} ({len(train_docs)} training, {len(eval_docs)} "
                        "held out): point PYDOCS_DIR at the python3.11-doc sources")
    tokenizer = (load_tokenizer(cfg.vocab_file) if cfg.vocab_file is not None
                 else train_tokenizer((s for d in train_docs for s in d), cfg))
    tokenizer.save_model(out_dir)  # vocab.txt
    tokenizer.save(os.path.join(out_dir, "tokenizer.json"))
    vocab = tokenizer.get_vocab()
    if len(vocab) > cfg.vocab_size:
        raise DataError(f"vocabulary {cfg.vocab_file or '(trained)'} has {len(vocab)} tokens, more than "
                        f"vocab_size {cfg.vocab_size}: write a new one with `python -m workloads.data.pydocs "
                        "--train_vocab=PATH`")
    ids = {t: vocab[t] for t in SPECIAL_TOKENS}
    vocab_ids = sorted(i for t, i in vocab.items() if t not in SPECIAL_TOKENS)

    def tokenize(docs: list[Document]) -> list[list[list[int]]]:
        flat = tokenizer.encode_batch([s for d in docs for s in d], add_special_tokens=False)
        out, k = [], 0
        for d in docs:
            out.append([e.ids for e in flat[k:k + len(d)] if e.ids])
            k += len(d)
        return [d for d in out if d]

    train_ids, eval_ids = tokenize(train_docs), tokenize(eval_docs)
    stats: dict[str, Any] = {"files": len(relpaths), "held_out_files": sorted(held),
                             "train_documents": len(train_ids), "eval_documents": len(eval_ids),
                             "train_tokens": sum(len(s) for d in train_ids for s in d),
                             "eval_tokens": sum(len(s) for d in eval_ids for s in d),
                             "vocab_size": len(vocab), "records": {}, "config": dataclasses.asdict(cfg)}
    jobs = [(T, "train", train_ids, cfg.dupe_factor) for T in cfg.train_seq_lens]
    jobs.append((cfg.eval_seq_len, "eval", eval_ids, cfg.eval_dupe_factor))
    for seq_len, part, docs, dupe in jobs:
        with _tqdm(len(docs) * dupe, f"pydocs_bert seq {seq_len} {part}", progress) as bar:
            instances = create_instances(docs, dupe, cfg.instances(seq_len), ids, vocab_ids, rng,
                                         bar.update)
        part_dir = os.path.join(out_dir, f"seq_len_{seq_len}", part)
        os.makedirs(part_dir)
        shards = cfg.train_shards if part == "train" else 1
        for k in range(shards):
            name = f"{part}-{k:02d}-of-{shards:02d}.tfrecord" if part == "train" else "heldout.tfrecord"
            records.write_records(os.path.join(part_dir, name), map(to_example, instances[k::shards]),
                                  seq_len, cfg.max_predictions(seq_len))
        stats["records"][f"seq_len_{seq_len}/{part}"] = len(instances)
    stats["build_seconds"] = round(time.perf_counter() - start, 1)
    with open(os.path.join(out_dir, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    return stats


def ensure_cache(data_dir: str | None = None, cfg: BuildConfig = BuildConfig(), source: str | None = None,
                 progress: bool = True) -> str:
    """The cache directory for (inputs, cfg), built first if absent (atomically: temp dir + rename)."""
    directory = source_dir(source)
    relpaths = find_sources(directory)
    root = cache_root(data_dir)
    path = os.path.join(root, cache_key(directory, relpaths, cfg))
    if os.path.isfile(os.path.join(path, "stats.json")):
        return path
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".building-", dir=root)
    try:
        stats = build(tmp, directory, relpaths, cfg, progress)
        try:
            os.rename(tmp, path)
        except OSError:  # another process finished the same build first: keep its copy
            if not os.path.isfile(os.path.join(path, "stats.json")):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        print(f"pydocs_bert: built {stats['records']} in {stats['build_seconds']} s -> {path}")
    return path


def write_trained_vocab(out_path: str, source: str | None = None, cfg: BuildConfig = BuildConfig()) -> int:
    """Train a vocabulary on the training documents of `source` and write it to `out_path`.

    Why pydocs_bert ships a fixed vocabulary instead of training one per build: the `tokenizers`
    WordPiece trainer is not deterministic (huggingface/tokenizers#1794: continuing-subword ids are
    assigned in hash-map order and break ties between merges), so two builds from the same files
    differed in a few tokens, and through the masking RNG in every record. Returns the token count.
    """
    directory = source_dir(source)
    relpaths = find_sources(directory)
    by_file = load_documents(directory, relpaths)
    _, docs, _ = split_by_file(by_file, relpaths, cfg.held_out_fraction)
    tokenizer = train_tokenizer((s for d in docs for s in d), cfg)
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    with open(out_path, "w", encoding="utf-8") as f:
        f.writelines(token + "\n" for token, _ in vocab)
    return len(vocab)


def define_flags(fv: Any) -> None:
    """The flags of `python -m workloads.data.pydocs` (absl FlagValues; see harness/cli.py)."""
    from absl import flags

    flags.DEFINE_string("train_vocab", None, "Output vocabulary file.", flag_values=fv)
    flags.DEFINE_string("source", None, f"reST sources (default ${SOURCE_ENV_VAR} or {DEFAULT_SOURCE_DIR}).",
                        flag_values=fv)


def main(argv: Sequence[str], fv: Any) -> int:
    """`python -m workloads.data.pydocs --train_vocab=PATH [--source=DIR]`: a new vocabulary file."""
    del argv
    if not fv.train_vocab:
        raise UserError("--train_vocab=PATH is required: where to write the new vocabulary")
    count = write_trained_vocab(fv.train_vocab, fv.source)
    print(f"wrote {count} tokens to {fv.train_vocab}")
    return 0


if __name__ == "__main__":
    from harness import cli  # the suite's entry-point conventions (only when run as a program)

    cli.run(define_flags, main)
