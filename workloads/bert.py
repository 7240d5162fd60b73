"""BERT-Large pretraining workloads of You et al. 2019 (Sec. 4.1, Table 1) and Nado et al. 2021
(Sec. 3, Table 4, Appendix C.2 Table 8): two phases, sequence length 128 then 512.

    bert_large_32k      phase 1: 14,063 steps at 32,768, seq 128; phase 2: 1,562 steps at 32,768, seq 512
    bert_large_65k_32k  phase 1:  7,037 steps at 65,536, seq 128; phase 2: 1,562 steps at 32,768, seq 512
    bert_large_65k      phase 1:  7,037 steps at 65,536, seq 128; phase 2:   781 steps at 65,536, seq 512

(step budgets 15,625 / 8,599 / 7,818, Nado Table 4.) Model: BERT-Large with the masked-LM and
next-sentence heads (workloads/models/bert.py, 336,226,108 parameters). Data: the official
pretraining TFRecords (workloads/data/pretraining_records.py documents the layout and the commands).

Loss (run_pretraining.py): L = sum_j w_j CE_j / (sum_j w_j + 1e-5) + mean_b CE_nsp(b), j over the
masked positions of the micro-batch with weights w_j = masked_lm_weights. Metric sums: 'loss' =
sum_j w_j CE_j, 'masked_lm_accuracy' = sum_j w_j [argmax = label], 'count' = sum_j w_j, plus
'nsp_loss', 'nsp_correct', 'nsp_count'. The harness's mean loss is therefore the masked-LM loss.
The harness averages the per-micro-batch gradients, so the masked-LM term is normalised per
micro-batch (BERT normalises per replica batch in the same way).

TARGET -- A PROXY. The papers' quality metric is SQuAD v1.1 dev F1 after fine-tuning (You et al.:
LAMB 91.345 at 32k; Nado Table 4: LAMB 91.48 / Adam 91.58 at 32k, LAMB 90.58 / Adam 91.04 at
65k/32k, Adam 90.46 at 65k), which needs fine-tuning data and a fine-tuning run this suite does not
have. Neither paper states the masked-LM accuracy their models reach (Nado et al. give only the
pretraining loss at 32k: Adam 1.277, LAMB 1.342, and select trials by masked-LM accuracy on 10k
training examples). The target here is held-out masked-LM accuracy 0.72: what Google's released
BERT-Large reports on held-out data (~0.71-0.72), and the quality target of the MLPerf Training
BERT-Large benchmark (0.720 masked-LM accuracy on held-out seq-512 records; 0.712 in v0.7).

Eval cadence: every 250 steps, plus the end of each phase (harness/runner.py). The target is only
reachable late in phase 2 (it is the end-of-pretraining accuracy), and phase 2 of bert_large_65k is
only 781 steps, so 250 gives at least 3 evaluations inside every phase 2 (6 for 1,562 steps) for the
time-to-target resolution; evaluations on the seq-512 held-out records during phase 1 are a
learning curve only (positions 128-511 are untrained until phase 2). Cost: a forward pass over 10k
seq-512 records is ~0.4 of a phase-1 training step (2·N·5.1M tokens vs 6·N·4.2M at batch 32,768),
< 0.2% of training at this cadence.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from harness.spec import (
    Batch,
    BatchScaling,
    BatchVariant,
    DataError,
    Direction,
    Knob,
    ModelState,
    Params,
    ParamTypes,
    Phase,
    split_param_types,
    validate_knobs,
)
from workloads.data import pretraining_records as records
from workloads.data.common import host_share
from workloads.models.bert import BertConfig, BertPretraining

#: Held-out masked-LM accuracy of the reference BERT-Large at the end of pretraining (a proxy of
#: the papers' SQuAD F1; provenance in the module docstring).
TARGET_MASKED_LM_ACCURACY = 0.72
#: Denominator guard of the masked-LM mean, as run_pretraining.py.
MLM_EPS = 1e-5
#: Micro-batch (gradient-accumulation unit) per sequence length: a memory/speed knob only (no BN).
MICRO_BATCH = {128: 64, 512: 16}


@dataclasses.dataclass(frozen=True)
class BertData:
    """File lists of the pretraining records (read lazily by tf.data)."""

    train_files: Mapping[int, tuple[str, ...]]  # seq_len -> training files
    eval_files: tuple[str, ...]  # held-out seq-512 records (split into validation/test by index)
    num_eval_records: int
    #: Identifies the exact records (pydocs_bert: its cache key); None where the files are the user's.
    fingerprint: str | None = None


def _sums(mlm_logits: jax.Array, nsp_logits: jax.Array, batch: Batch, row_weight: jax.Array
          ) -> dict[str, jax.Array]:
    """Metric sums over masked positions weighted by masked_lm_weights · row_weight (module doc)."""
    log_probs = jax.nn.log_softmax(mlm_logits.astype(jnp.float32), axis=-1)
    labels = batch["masked_lm_ids"]
    token_loss = -jnp.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]  # (B, P)
    weights = batch["masked_lm_weights"] * row_weight[:, None]
    correct = (jnp.argmax(mlm_logits, axis=-1) == labels).astype(jnp.float32)
    nsp_labels = batch["next_sentence_labels"]
    nsp_loss = optax.softmax_cross_entropy_with_integer_labels(nsp_logits.astype(jnp.float32), nsp_labels)
    nsp_correct = (jnp.argmax(nsp_logits, axis=-1) == nsp_labels).astype(jnp.float32)
    return {"loss": jnp.sum(weights * token_loss), "masked_lm_accuracy": jnp.sum(weights * correct),
            "count": jnp.sum(weights), "nsp_loss": jnp.sum(row_weight * nsp_loss),
            "nsp_correct": jnp.sum(row_weight * nsp_correct), "nsp_count": jnp.sum(row_weight)}


class BertPretrainingWorkload:
    """Two-phase BERT pretraining; subclasses set `name` and `PHASES` (steps, batch, seq_len)."""

    name: str
    metric = "masked_lm_accuracy"
    direction = Direction.MAXIMIZE
    target = TARGET_MASKED_LM_ACCURACY
    PHASES: tuple[tuple[int, int, int], ...]  # (steps, global batch size, sequence length) per phase
    #: Sequence length of the held-out records (both evaluation splits).
    eval_seq_len = records.EVAL_SEQ_LEN
    eval_every_steps = 250
    checkpoint_every = 250  # hours on a pod: at every evaluation
    eval_batch_size = 128
    KNOBS: tuple[Knob, ...] = (
        Knob("hidden_dropout", 0.1, 0.0, 0.5, "dropout on embeddings and sub-layer outputs (BERT 0.1)"),
        Knob("attention_dropout", 0.1, 0.0, 0.5, "dropout on attention probabilities (BERT 0.1)"),
    )

    def __init__(self, knobs: Mapping[str, Any] | None = None, *, num_layers: int | None = None,
                 hidden_size: int | None = None, vocab_size: int | None = None,
                 phase_steps: Sequence[int] | None = None, phase_batch_sizes: Sequence[int] | None = None,
                 micro_batch_sizes: Sequence[int] | None = None, eval_batch_size: int | None = None) -> None:
        """Keyword overrides exist for tests only (same code paths, smaller sizes): the layer count,
        the width (heads = hidden / 64 and FFN = 4 · hidden, the BERT ratios), the vocabulary, and
        per-phase steps / global batch sizes / micro-batch sizes."""
        self.knobs = validate_knobs(self.KNOBS, knobs or {}, self.name)
        overrides: dict[str, Any] = {"hidden_dropout": self.knobs["hidden_dropout"],
                                     "attention_dropout": self.knobs["attention_dropout"]}
        if num_layers is not None:
            overrides["num_layers"] = num_layers
        if hidden_size is not None:
            overrides.update(hidden_size=hidden_size, num_heads=max(1, hidden_size // 64),
                             intermediate_size=4 * hidden_size)
        if vocab_size is not None:
            overrides["vocab_size"] = vocab_size
        self.config = BertConfig.large(**overrides)
        self.model = BertPretraining(self.config)
        self._phases = self._build_phases(phase_steps, phase_batch_sizes, micro_batch_sizes)
        if eval_batch_size is not None:
            self.eval_batch_size = eval_batch_size

    def _build_phases(self, steps: Sequence[int] | None, batches: Sequence[int] | None,
                      micros: Sequence[int] | None) -> tuple[Phase, ...]:
        n = len(self.PHASES)
        for label, given in (("phase_steps", steps), ("phase_batch_sizes", batches),
                             ("micro_batch_sizes", micros)):
            if given is not None and len(given) != n:
                raise ValueError(f"{label} needs {n} values (one per phase), got {list(given)}")
        phases = []
        for i, (default_steps, default_batch, seq_len) in enumerate(self.PHASES):
            batch = batches[i] if batches is not None else default_batch
            phases.append(Phase(name=f"phase{i + 1}_seq{seq_len}",
                                steps=steps[i] if steps is not None else default_steps,
                                global_batch_size=batch,
                                micro_batch_size=micros[i] if micros is not None else MICRO_BATCH[seq_len],
                                seq_len=seq_len))
        return tuple(phases)

    # --- schedule -----------------------------------------------------------------------------
    @property
    def phases(self) -> tuple[Phase, ...]:
        return self._phases

    @property
    def step_budget(self) -> int:
        return sum(p.steps for p in self._phases)

    def with_batch(self, variant: BatchVariant) -> BertPretrainingWorkload:
        """This workload at other global batches (harness/spec.py Workload.with_batch): a shallow
        copy with the variant's phases, cadences and target; model, knobs and evaluation as here."""
        resized = copy.copy(self)
        resized._phases = variant.phases
        resized.eval_every_steps, resized.checkpoint_every = variant.eval_every_steps, variant.checkpoint_every
        if variant.target is not None:
            resized.target = variant.target
        return resized

    @property
    def global_batch_size(self) -> int:
        """Phase 1's global batch (each phase's own is in `phases`)."""
        return self._phases[0].global_batch_size

    @property
    def micro_batch_size(self) -> int:
        """Phase 1's micro-batch (each phase's own is in `phases`)."""
        return self._phases[0].micro_batch_size

    # --- data ---------------------------------------------------------------------------------
    def max_predictions(self, seq_len: int) -> int:
        """max_predictions_per_seq of the records of length `seq_len` (the official data's flags):
        with the sequence length, the shape of every record feature (records.feature_shapes)."""
        return records.MAX_PREDICTIONS[seq_len]

    def load_data(self, data_dir: str | None) -> BertData:
        """Locate the records, parse the first record of every file and count the held-out ones."""
        directory = records.resolve_data_dir(data_dir)
        train_files = {}
        for seq_len in sorted({p.seq_len for p in self._phases if p.seq_len is not None}):
            files = records.find_files(directory, seq_len, "train")
            records.check_files(files, seq_len, self.max_predictions(seq_len))
            train_files[seq_len] = tuple(files)
        eval_len = self.eval_seq_len
        eval_files = records.find_files(directory, eval_len, "eval")
        records.check_files(eval_files, eval_len, self.max_predictions(eval_len))
        count = records.count_records(eval_files, eval_len, self.max_predictions(eval_len))
        if count < 2:
            raise DataError(f"only {count} held-out record(s) in {eval_files[0]}: the validation "
                                    "and test splits need at least 2; create more with create_pretraining_data.py")
        return BertData(train_files, tuple(eval_files), count)

    def train_batches(self, data: BertData, seed: int, phase: int = 0, start: int = 0) -> Iterator[Batch]:
        """Endless batches of phase `phase`: this host's share of its global batch at its seq_len,
        from the phase's `start`-th batch on (records.train_dataset: the skipped batches are read
        through, not parsed).

        The tf.data seed is derived from (seed, phase) with numpy's SeedSequence (never hash()).
        """
        p = self._phases[phase]
        local, _ = host_share(p.global_batch_size)
        assert p.seq_len is not None
        data_seed = int(np.random.SeedSequence([seed, phase]).generate_state(1)[0])
        return records.train_dataset(data.train_files[p.seq_len], p.seq_len,
                                     self.max_predictions(p.seq_len), local, data_seed, start=start)

    def abstract_batch(self, batch_size: int, phase: int = 0) -> Batch:
        """Shapes and dtypes of a training batch of phase `phase` (for compiling without data)."""
        seq_len = self._phases[phase].seq_len
        assert seq_len is not None
        return {key: jax.ShapeDtypeStruct((batch_size, *shape), dtype) for key, (shape, dtype) in
                records.feature_shapes(seq_len, self.max_predictions(seq_len)).items()}

    def eval_batch_rows(self, data: BertData) -> int:
        """Rows of every evaluation batch (this process's share)."""
        return self.eval_batch_size

    def eval_batches(self, data: BertData, split: str) -> Iterator[Batch]:
        """This process's share of split `split` of the held-out records, in batches of one shape
        and equal in number on every process (records.eval_batches)."""
        return records.eval_batches(data.eval_files, self.eval_seq_len,
                                    self.max_predictions(self.eval_seq_len), self.eval_batch_rows(data),
                                    split, num_records=data.num_eval_records)

    # --- model --------------------------------------------------------------------------------
    def init(self, rng: jax.Array) -> tuple[Params, ModelState, ParamTypes]:
        ids = jnp.zeros((1, 8), jnp.int32)  # parameter shapes do not depend on the sequence length
        variables = self.model.init(rng, ids, ids, ids, ids[:, :2], train=False)
        params, param_types = split_param_types(variables["params"])
        return params, {}, param_types

    def _logits(self, params: Params, batch: Batch, train: bool, rng: jax.Array | None = None
                ) -> tuple[jax.Array, jax.Array]:
        rngs = {"dropout": rng} if train and rng is not None else {}
        logits: Any = self.model.apply({"params": params}, batch["input_ids"], batch["input_mask"],
                                       batch["segment_ids"], batch["masked_lm_positions"], train=train,
                                       rngs=rngs)
        return logits

    def train_loss(self, params: Params, model_state: ModelState, batch: Batch, rng: jax.Array
                   ) -> tuple[jax.Array, tuple[ModelState, dict[str, jax.Array]]]:
        """(masked-LM mean + NSP mean of the micro-batch, ({}, sums)); dropout draws from `rng`."""
        mlm_logits, nsp_logits = self._logits(params, batch, True, rng)
        sums = _sums(mlm_logits, nsp_logits, batch, jnp.ones(batch["input_ids"].shape[0], jnp.float32))
        loss = sums["loss"] / (sums["count"] + MLM_EPS) + sums["nsp_loss"] / sums["nsp_count"]
        return loss, (model_state, sums)

    def eval_sums(self, params: Params, model_state: ModelState, batch: Batch) -> dict[str, jax.Array]:
        """The sums of train_loss without dropout, each row weighted by batch['mask']."""
        mlm_logits, nsp_logits = self._logits(params, batch, False)
        return _sums(mlm_logits, nsp_logits, batch, batch["mask"])


#: You et al. 2019 Table 1 (LAMB, "All the experiments run the same number of epochs"): total steps
#: per batch size, 512 to 32K; the first 9/10 of them at sequence length 128, the last 1/10 at 512
#: ("the first 9/10 of the total epochs used a sequence length of 128 and the last 1/10 ... 512").
YOU2019_TABLE1_STEPS = {512: 1_000_000, 1_024: 500_000, 2_048: 250_000, 4_096: 125_000, 8_192: 62_500,
                        16_384: 31_250, 32_768: 15_625}


def _nine_tenths(total: int) -> tuple[int, int]:
    """(phase 1, phase 2) steps of a Table 1 total: 9/10 at seq 128, 1/10 at seq 512; the 32K split
    the paper states (14,063 + 1,562 of 15,625) rounds phase 1 up."""
    first = -(-9 * total // 10)
    return first, total - first


class BertLarge32k(BertPretrainingWorkload):
    """You et al. Table 1 (LAMB, 32k) / Nado Table 4 row 1: 14,063 + 1,562 steps at 32,768.

    At other batch sizes (--batch_size=B, both phases at B: You et al. Table 4's fixed-epoch study,
    512 to 32K, lamb --config=you2019_table4): the steps Table 1 lists, split 9/10 + 1/10 (at 32K
    exactly the paper's 14,063 + 1,562); at 64K the 7,037 + 781 steps of Nado et al. Table 4
    (bert_large_65k); elsewhere fixed epochs from 32K.
    """

    name = "bert_large_32k"
    PHASES = ((14_063, 32_768, 128), (1_562, 32_768, 512))
    batch_scaling = BatchScaling(
        listed_steps={**{b: _nine_tenths(n) for b, n in YOU2019_TABLE1_STEPS.items()}, 65_536: (7_037, 781)},
        source="You et al. 2019 Table 1 (512 to 32K, 9/10 + 1/10 per phase), Nado et al. 2021 Table 4 (64K)")


class BertLarge65k32k(BertPretrainingWorkload):
    """You et al. mixed-batch training / Nado Table 4 row 2: 7,037 at 65,536 then 1,562 at 32,768."""

    name = "bert_large_65k_32k"
    PHASES = ((7_037, 65_536, 128), (1_562, 32_768, 512))


class BertLarge65k(BertPretrainingWorkload):
    """Nado Table 4 row 3 (Adam only): 7,037 + 781 steps at 65,536."""

    name = "bert_large_65k"
    PHASES = ((7_037, 65_536, 128), (781, 65_536, 512))
