"""BERT pretraining instances from tokenised documents: create_pretraining_data.py of
google-research/bert, ported (without whole-word masking).

A document is a list of sentences, a sentence a list of token ids. Each pass over the documents
(`dupe_factor` of them, each masked anew) cuts every document into chunks of sentences up to a
target length, splits a chunk into segments A and B with a next-sentence label (B the true
continuation, or a span of another document), and masks 15% of the tokens 80/10/10
([MASK] / kept / a random token). `to_example` turns an instance into the feature dict of
workloads/data/pretraining_records.write_records.

Every draw comes from the one `random.Random` passed in, in the order of the original code, so the
instances are a function of the documents, the config and the seed. Any change of the output
changes the pydocs_bert records: bump workloads.data.pydocs.CODE_VERSION.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

Document = Sequence[list[int]]  # sentences of token ids


@dataclasses.dataclass(frozen=True)
class InstanceConfig:
    """The flags of create_pretraining_data.py that shape the instances of one sequence length."""

    seq_len: int  # max_seq_length
    max_predictions: int  # max_predictions_per_seq
    masked_lm_prob: float
    short_seq_prob: float


@dataclasses.dataclass(frozen=True)
class Instance:
    tokens: list[int]
    segment_ids: list[int]
    masked_lm_positions: list[int]
    masked_lm_ids: list[int]
    is_random_next: bool


def _truncate_pair(a: list[int], b: list[int], max_tokens: int, rng: random.Random) -> None:
    """truncate_seq_pair: pop from the longer side, at the front or back at random."""
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def _mask(tokens: list[int], special: set[int], vocab_ids: Sequence[int], mask_id: int, prob: float,
          max_predictions: int, rng: random.Random) -> tuple[list[int], list[int], list[int]]:
    """create_masked_lm_predictions (no whole-word masking): round(prob · len) positions (at most
    max_predictions, at least 1) among non-special tokens; 80% [MASK], 10% kept, 10% random token."""
    candidates = [i for i, t in enumerate(tokens) if t not in special]
    rng.shuffle(candidates)
    n = min(max_predictions, max(1, int(round(len(tokens) * prob))))
    output = list(tokens)
    chosen = sorted(candidates[:n])
    for index in chosen:
        if rng.random() < 0.8:
            output[index] = mask_id
        elif rng.random() < 0.5:
            pass  # keep the original token
        else:
            output[index] = vocab_ids[rng.randint(0, len(vocab_ids) - 1)]
    return output, chosen, [tokens[i] for i in chosen]


def _instances_from_document(docs: Sequence[Document], index: int, cfg: InstanceConfig,
                             ids: Mapping[str, int], vocab_ids: Sequence[int], rng: random.Random
                             ) -> Iterator[Instance]:
    """create_instances_from_document: chunks of sentences up to a target length (shorter with
    probability short_seq_prob), split into A and B; B is the true continuation or, with
    probability 1/2 (and always for a one-sentence chunk), a span of a random other document."""
    document = docs[index]
    max_tokens = cfg.seq_len - 3
    target = rng.randint(2, max_tokens) if rng.random() < cfg.short_seq_prob else max_tokens
    special = {ids["[CLS]"], ids["[SEP]"]}
    chunk: list[list[int]] = []
    length = 0
    i = 0
    while i < len(document):
        chunk.append(document[i])
        length += len(document[i])
        if i == len(document) - 1 or length >= target:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            a = [t for s in chunk[:a_end] for t in s]
            b: list[int] = []
            if len(chunk) == 1 or rng.random() < 0.5:
                random_next = True
                other = index
                for _ in range(10):
                    other = rng.randint(0, len(docs) - 1)
                    if other != index:
                        break
                random_doc = docs[other]
                for s in random_doc[rng.randint(0, len(random_doc) - 1):]:
                    b.extend(s)
                    if len(b) >= target - len(a):
                        break
                i -= len(chunk) - a_end  # put the unused sentences back
            else:
                random_next = False
                b = [t for s in chunk[a_end:] for t in s]
            _truncate_pair(a, b, max_tokens, rng)
            if a and b:
                tokens = [ids["[CLS]"], *a, ids["[SEP]"], *b, ids["[SEP]"]]
                segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
                masked, positions, labels = _mask(tokens, special, vocab_ids, ids["[MASK]"],
                                                  cfg.masked_lm_prob, cfg.max_predictions, rng)
                yield Instance(masked, segments, positions, labels, random_next)
            chunk, length = [], 0
        i += 1


def create_instances(docs: Sequence[Document], dupe_factor: int, cfg: InstanceConfig,
                     ids: Mapping[str, int], vocab_ids: Sequence[int], rng: random.Random,
                     progress: Callable[[int], None] = lambda n: None) -> list[Instance]:
    """All instances of `dupe_factor` passes over the documents (each re-masked), shuffled.

    `ids` holds the ids of [CLS], [SEP] and [MASK]; random replacements are drawn from `vocab_ids`.
    """
    instances: list[Instance] = []
    for _ in range(dupe_factor):
        for index in range(len(docs)):
            instances.extend(_instances_from_document(docs, index, cfg, ids, vocab_ids, rng))
            progress(1)
    rng.shuffle(instances)
    return instances


def to_example(instance: Instance) -> dict[str, Any]:
    """An Instance as the feature dict of pretraining_records.write_records (unpadded)."""
    n = len(instance.tokens)
    return {"input_ids": instance.tokens, "input_mask": [1] * n, "segment_ids": instance.segment_ids,
            "masked_lm_positions": instance.masked_lm_positions, "masked_lm_ids": instance.masked_lm_ids,
            "masked_lm_weights": [1.0] * len(instance.masked_lm_ids),
            "next_sentence_labels": int(instance.is_random_next)}
