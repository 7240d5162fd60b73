"""BERT encoder with the pretraining heads (masked LM + next-sentence prediction), Flax linen.

Follows google-research/bert modeling.py / run_pretraining.py (Devlin et al. 2018):

    embeddings  e = LN(W_word[ids] + W_pos[0:T] + W_type[segment_ids]);  e = dropout(e)
    layer l     a = softmax(Q K^T / sqrt(d_head) + (1 - input_mask) * -10000) V      (per head)
                h = LN(h + dropout(W_o a + b_o))                                    (post-LN)
                h = LN(h + dropout(W_2 gelu(W_1 h + b_1) + b_2))
    pooler      p = tanh(W_p h[:, 0] + b_p)                                         ([CLS])
    masked LM   z = LN(gelu(W_t h[masked_lm_positions] + b_t));  logits = z W_word^T + b_out
                (the output projection is TIED to the word embeddings; b_out is its own bias)
    NSP         logits = W_nsp p + b_nsp   (2 classes: 0 = is next, 1 = random)

Attention dropout acts on the attention probabilities, hidden dropout on each sub-layer output.
Every parameter is initialised as BERT (truncated normal, stddev 0.02, cut at 2 stddev; biases and
LN offsets 0, LN scales 1) and declares its spec.ParamType.

GELU: the checkpoints Google released were trained with the exact erf form
0.5 x (1 + erf(x / sqrt(2))); google-research/bert's current modeling.py computes the tanh
approximation instead. `BertConfig.gelu_approximate` selects the tanh form; the default is exact.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.nn import initializers

from harness.spec import ParamType, typed
from workloads.models.layers import param

#: Additive attention bias of padded keys, as in the original code (exp(-10000) == 0 in float32).
MASKED_KEY_BIAS = -10000.0


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Hyperparameters of the encoder (defaults: BERT-Large, uncased vocabulary)."""

    vocab_size: int = 30522
    hidden_size: int = 1024
    num_layers: int = 24
    num_heads: int = 16
    intermediate_size: int = 4096
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    gelu_approximate: bool = False

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")

    @classmethod
    def large(cls, **overrides: Any) -> BertConfig:
        """BERT-Large: 24 layers, hidden 1024, 16 heads, FFN 4096 (~336M parameters with the heads)."""
        return cls(**overrides)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


# --- typed layers -----------------------------------------------------------------------------


def _init(cfg: BertConfig) -> initializers.Initializer:
    """tf.truncated_normal_initializer(stddev=0.02): stddev of the UNtruncated normal, cut at ±2σ."""
    return initializers.truncated_normal(cfg.initializer_range)


def _dense(cfg: BertConfig, features: int, kernel_type: ParamType, name: str) -> nn.Dense:
    return nn.Dense(features, kernel_init=typed(_init(cfg), kernel_type),
                    bias_init=typed(initializers.zeros, ParamType.BIAS), name=name)


def _layer_norm(cfg: BertConfig, name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=cfg.layer_norm_eps, name=name,
                        scale_init=typed(initializers.ones, ParamType.LN_SCALE),
                        bias_init=typed(initializers.zeros, ParamType.LN_BIAS))


def _gelu(cfg: BertConfig, x: jax.Array) -> jax.Array:
    return nn.gelu(x, approximate=cfg.gelu_approximate)


# --- modules ----------------------------------------------------------------------------------


class Embeddings(nn.Module):
    cfg: BertConfig

    @nn.compact
    def __call__(self, input_ids: jax.Array, segment_ids: jax.Array, train: bool
                 ) -> tuple[jax.Array, jax.Array]:
        """(LN + dropout of the summed embeddings (B, T, H), the word table (V, H) for the tied head)."""
        cfg = self.cfg
        seq_len = input_ids.shape[1]
        if seq_len > cfg.max_position_embeddings:
            raise ValueError(f"sequence length {seq_len} > max_position_embeddings {cfg.max_position_embeddings}")
        emb = lambda n, rows: param(self, n, _init(cfg), ParamType.EMBEDDING,  # noqa: E731
                                    (rows, cfg.hidden_size))
        word = emb("word_embeddings", cfg.vocab_size)
        position = emb("position_embeddings", cfg.max_position_embeddings)
        token_type = emb("token_type_embeddings", cfg.type_vocab_size)
        x = jnp.take(word, input_ids, axis=0) + position[None, :seq_len] \
            + jnp.take(token_type, segment_ids, axis=0)
        x = _layer_norm(cfg, "layer_norm")(x)
        return nn.Dropout(cfg.hidden_dropout, deterministic=not train)(x), word


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate Q, K, V projections (kernels (H, H) as in BERT)."""

    cfg: BertConfig

    @nn.compact
    def __call__(self, x: jax.Array, key_bias: jax.Array, train: bool) -> jax.Array:
        cfg = self.cfg
        batch, seq_len, _ = x.shape
        split = lambda t: t.reshape(batch, seq_len, cfg.num_heads, cfg.head_dim)  # noqa: E731
        q = split(_dense(cfg, cfg.hidden_size, ParamType.ATTENTION_QKV, "query")(x))
        k = split(_dense(cfg, cfg.hidden_size, ParamType.ATTENTION_QKV, "key")(x))
        v = split(_dense(cfg, cfg.hidden_size, ParamType.ATTENTION_QKV, "value")(x))
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.float32(cfg.head_dim))
        probs = jax.nn.softmax(scores + key_bias, axis=-1)
        probs = nn.Dropout(cfg.attention_dropout, deterministic=not train)(probs)
        context = jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(batch, seq_len, cfg.hidden_size)
        return _dense(cfg, cfg.hidden_size, ParamType.ATTENTION_OUT, "output")(context)


class TransformerLayer(nn.Module):
    """Post-LN block: h = LN(h + drop(attn(h))); h = LN(h + drop(W_2 gelu(W_1 h)))."""

    cfg: BertConfig

    @nn.compact
    def __call__(self, h: jax.Array, key_bias: jax.Array, train: bool) -> jax.Array:
        cfg = self.cfg
        drop = nn.Dropout(cfg.hidden_dropout, deterministic=not train)
        a = SelfAttention(cfg, name="attention")(h, key_bias, train)
        h = _layer_norm(cfg, "attention_layer_norm")(h + drop(a))
        f = _gelu(cfg, _dense(cfg, cfg.intermediate_size, ParamType.WEIGHT, "intermediate")(h))
        f = _dense(cfg, cfg.hidden_size, ParamType.WEIGHT, "ffn_output")(f)
        return _layer_norm(cfg, "ffn_layer_norm")(h + drop(f))


class BertPretraining(nn.Module):
    """BERT encoder + pooler + masked-LM head (tied) + next-sentence head."""

    cfg: BertConfig

    @nn.compact
    def __call__(self, input_ids: jax.Array, input_mask: jax.Array, segment_ids: jax.Array,
                 masked_lm_positions: jax.Array, train: bool) -> tuple[jax.Array, jax.Array]:
        """(masked-LM logits (B, P, V) at `masked_lm_positions`, next-sentence logits (B, 2))."""
        cfg = self.cfg
        h, word_table = Embeddings(cfg, name="embeddings")(input_ids, segment_ids, train)
        # Padded keys get a large negative bias; padded queries are computed and ignored.
        key_bias = ((1.0 - input_mask.astype(h.dtype)) * MASKED_KEY_BIAS)[:, None, None, :]
        for i in range(cfg.num_layers):
            h = TransformerLayer(cfg, name=f"layer_{i}")(h, key_bias, train)

        pooled = jnp.tanh(_dense(cfg, cfg.hidden_size, ParamType.WEIGHT, "pooler")(h[:, 0]))
        nsp_logits = _dense(cfg, 2, ParamType.WEIGHT, "nsp_output")(pooled)

        # Gather only the masked positions before the (large) vocabulary projection, as BERT does.
        z = jnp.take_along_axis(h, masked_lm_positions[..., None].astype(jnp.int32), axis=1)
        z = _gelu(cfg, _dense(cfg, cfg.hidden_size, ParamType.WEIGHT, "mlm_transform")(z))
        z = _layer_norm(cfg, "mlm_layer_norm")(z)
        output_bias = param(self, "mlm_output_bias", initializers.zeros, ParamType.BIAS, (cfg.vocab_size,))
        mlm_logits = jnp.einsum("bph,vh->bpv", z, word_table) + output_bias
        return mlm_logits, nsp_logits


def param_count(cfg: BertConfig | None = None) -> int:
    """Exact parameter count of `cfg` (default BERT-Large) from abstract shapes: nothing is allocated."""
    cfg = cfg or BertConfig.large()
    model = BertPretraining(cfg)
    ids = jnp.zeros((1, 8), jnp.int32)
    shapes = jax.eval_shape(lambda r: model.init(r, ids, ids, ids, ids[:, :2], train=False),
                            jax.random.PRNGKey(0))
    return sum(int(x.size) for x in jax.tree.leaves(nn.meta.unbox(shapes["params"])))
