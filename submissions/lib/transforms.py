"""Optax GradientTransformations for the reference formulas where optax's look-alikes differ.

Norms are per tensor (layer-wise). Every computation stays in the dtype of the parameters / updates.
``mask`` arguments are static pytrees of Python bools with the params' structure (``True``: the
parameter is weight-like, see spec.weight_mask) or a single bool for all parameters; branching on
them happens at trace time, never on array values (those use jnp.where). The numeric arguments
(rates, decays, betas, eps: ``Scalar``) may be Python floats or traced JAX scalars (harness/spec.py,
"Static and traced hyperparameters"); nothing branches on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

Mask = Any  # a pytree of bools with the params' structure, or one bool for every parameter
Scalar = float | jax.Array  # a Python float or a (traced) JAX scalar


def _mask_tree(mask: Mask, tree: Any) -> Any:
    return jax.tree.map(lambda _: mask, tree) if isinstance(mask, bool) else mask


def _mask_fn(mask: Mask) -> Callable[[Any], Any]:
    return lambda params: _mask_tree(mask, params)


def _norm(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(x * x))


# --- Adam moments with optional bias correction -------------------------------------------------


class ScaleByAdamState(NamedTuple):
    # int32, updates applied so far. The name shadows tuple.count, as in optax's own states.
    count: jax.Array  # type: ignore[assignment]
    mu: optax.Updates
    nu: optax.Updates


def scale_by_adam_optional_bias_correction(b1: Scalar = 0.9, b2: Scalar = 0.999, eps: Scalar = 1e-8,
                                           bias_correction: bool = True) -> optax.GradientTransformation:
    r"""Adam's direction, with Kingma & Ba's bias correction optional.

    Hand-written because optax.scale_by_adam always bias-corrects, while the BERT/Google
    AdamWeightDecay and LAMB reference code does not (Nado et al. 2021, Sec. 3)::

        m_t = b1 m_{t-1} + (1 - b1) g_t          v_t = b2 v_{t-1} + (1 - b2) g_t^2
        m^ = m_t / (1 - b1^t),  v^ = v_t / (1 - b2^t)     (m^ = m_t, v^ = v_t without correction)
        r_t = m^ / (sqrt(v^) + eps)

    b1 and b2 are taken in the moments' dtype before 1 - b is formed, so the arithmetic is the same
    for Python floats and traced scalars, and the moments and the bias correction use the same b:
    in float32, 1 - 0.999 computed in float64 (0.001) is not 1 - fl32(0.999) (0.00099998713), a
    relative difference of 1.3e-5 that would otherwise leave v^ != g^2 at t = 1.
    """

    def ema(b: Scalar, acc: jax.Array, x: jax.Array) -> jax.Array:
        b = jnp.asarray(b, acc.dtype)
        return b * acc + (1 - b) * x

    def init_fn(params: optax.Params) -> ScaleByAdamState:
        return ScaleByAdamState(jnp.zeros([], jnp.int32), jax.tree.map(jnp.zeros_like, params),
                                jax.tree.map(jnp.zeros_like, params))

    def update_fn(updates: optax.Updates, state: ScaleByAdamState, params: optax.Params = None
                  ) -> tuple[optax.Updates, ScaleByAdamState]:
        del params
        mu = jax.tree.map(lambda m, g: ema(b1, m, g), state.mu, updates)
        nu = jax.tree.map(lambda v, g: ema(b2, v, g * g), state.nu, updates)
        count = optax.safe_int32_increment(state.count)

        def direction(m: jax.Array, v: jax.Array) -> jax.Array:
            if bias_correction:
                t = count.astype(m.dtype)
                m = m / (1 - jnp.asarray(b1, m.dtype) ** t)
                v = v / (1 - jnp.asarray(b2, v.dtype) ** t)
            return m / (jnp.sqrt(v) + eps)

        return jax.tree.map(direction, mu, nu), ScaleByAdamState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


def adamw(learning_rate: optax.ScalarOrSchedule, b1: Scalar = 0.9, b2: Scalar = 0.999,
          eps: Scalar = 1e-8, weight_decay: Scalar = 0.0, mask: Mask = True,
          bias_correction: bool = True) -> optax.GradientTransformation:
    r"""AdamW with decoupled decay on the masked (weight-like) parameters only::

        w <- w - lr_t * (m^ / (sqrt(v^) + eps) + wd * w)        (wd term only where mask is True)

    Equal to optax.adamw when bias_correction=True; composed here so the correction can be dropped.
    """
    return optax.chain(
        scale_by_adam_optional_bias_correction(b1, b2, eps, bias_correction),
        optax.add_decayed_weights(weight_decay, _mask_fn(mask)),
        optax.scale_by_learning_rate(learning_rate),
    )


# --- LAMB (You et al. 2019, Algorithm 2) --------------------------------------------------------


def lamb(learning_rate: optax.ScalarOrSchedule, b1: Scalar = 0.9, b2: Scalar = 0.999,
         eps: Scalar = 1e-6, weight_decay: Scalar = 0.0, mask: Mask = True,
         bias_correction: bool = True) -> optax.GradientTransformation:
    r"""LAMB, You et al. 2019 Algorithm 2 with phi(z) = z, layer-wise::

        r = m^ / (sqrt(v^) + eps)                    (Adam direction, bias correction optional)
        u = r + wd * w
        ratio = ||w|| / ||u||       (1 if ||w|| = 0 or ||u|| = 0)
        w <- w - lr_t * ratio * u                    where mask is True
        w <- w - lr_t * r                            where mask is False (plain Adam, no decay)

    eps sits outside the square root as in DESIGN.md and the BERT/Google code (the paper's box
    prints m / sqrt(v + eps)). mask=True everywhere is pure Algorithm 2. With mask =
    spec.weight_mask(...): bias_correction=False is the Google/BERT variant; bias_correction=True is
    Nado et al. Table 5 "LAMB on weights, Adam on BN/bias". Not optax.lamb: that always
    bias-corrects and its mask only masks the decay, never the trust ratio.
    """
    mask_fn = _mask_fn(mask)
    return optax.chain(
        scale_by_adam_optional_bias_correction(b1, b2, eps, bias_correction),
        optax.add_decayed_weights(weight_decay, mask_fn),
        optax.masked(optax.scale_by_trust_ratio(), mask_fn),  # ||w|| / ||u||, 1 on zero norms
        optax.scale_by_learning_rate(learning_rate),
    )


# --- LARS (MLPerf / TF / Flax reference) --------------------------------------------------------


def scale_by_mlperf_lars_trust(weight_decay: Scalar = 0.0, trust_coefficient: Scalar = 0.001,
                               eps: Scalar = 0.0, mask: Mask = True) -> optax.GradientTransformation:
    r"""The MLPerf LARS direction (stateless)::

        trust = eta * ||w|| / (||g|| + wd * ||w|| + eps)     (1 if ||w|| = 0 or ||g|| = 0)
        out = trust * (g + wd * w)                           where mask is True
        out = g                                              where mask is False (no decay)

    Hand-written because optax.scale_by_trust_ratio after optax.add_decayed_weights (= optax.lars)
    divides by ||g + wd * w||, a different optimizer whenever wd > 0.
    """

    def update_fn(updates: optax.Updates, state: optax.EmptyState, params: optax.Params = None
                  ) -> tuple[optax.Updates, optax.EmptyState]:
        if params is None:
            raise ValueError("scale_by_mlperf_lars_trust needs params: call update(grads, state, params)")

        def leaf(g: jax.Array, w: jax.Array, weight_like: bool) -> jax.Array:
            if not weight_like:
                return g
            w_norm, g_norm = _norm(w), _norm(g)
            ok = jnp.logical_and(w_norm > 0, g_norm > 0)
            denom = jnp.where(ok, g_norm + weight_decay * w_norm + eps, 1)
            trust = jnp.where(ok, trust_coefficient * w_norm / denom, 1).astype(g.dtype)
            return trust * (g + weight_decay * w)

        return jax.tree.map(leaf, updates, params, _mask_tree(mask, updates)), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def lars(learning_rate: optax.ScalarOrSchedule, momentum: Scalar = 0.9, weight_decay: Scalar = 0.0,
         trust_coefficient: Scalar = 0.001, eps: Scalar = 0.0, mask: Mask = True
         ) -> optax.GradientTransformation:
    r"""MLPerf LARS: momentum on the trust-scaled, L2-decayed gradient, lr inside the momentum::

        v <- m * v + lr_t * trust * (g + wd * w);   w <- w - v        where mask is True
        v <- m * v + lr_t * g;                      w <- w - v        where mask is False

    (chain order as optax.lars: scale by -lr_t, then trace, so the trace holds -v.)
    """
    return optax.chain(
        scale_by_mlperf_lars_trust(weight_decay, trust_coefficient, eps, mask),
        optax.scale_by_learning_rate(learning_rate),
        optax.trace(decay=momentum),
    )


# --- LARS (You et al. 2019, Algorithm 1) -----------------------------------------------------------


def lars_you2019(learning_rate: optax.ScalarOrSchedule, momentum: Scalar = 0.9, weight_decay: Scalar = 0.0,
                 mask: Mask = True) -> optax.GradientTransformation:
    r"""LARS as You et al. 2019 (the LAMB paper) print it, Algorithm 1 with phi(z) = z, layer-wise::

        m_t = b1 m_{t-1} + (1 - b1) (g_t + wd * w_t)              (m_0 = 0; b1 = momentum)
        w <- w - lr_t * ||w_t|| / ||m_t|| * m_t     (ratio 1 if a norm is 0)   where mask is True
        m_t = b1 m_{t-1} + (1 - b1) g_t;   w <- w - lr_t * m_t                  where mask is False

    Unlike the MLPerf form (`lars`) the trust ratio scales the momentum, not the gradient that
    enters it, the learning rate sits outside the momentum, the momentum is an EMA (the (1 - b1)
    factor), and there is neither eta (trust coefficient) nor eps: phi(z) = z, the case You et al.
    Sec. 3 discuss (their practical phi clips z to [gamma_l, gamma_u], values they do not give), as
    `lamb`'s ratio. Where mask is False (BN/LN scales and offsets, biases) it is the momentum
    alone, without decay or ratio, as `lamb` takes plain Adam there.
    """
    mask_fn = _mask_fn(mask)
    return optax.chain(
        optax.add_decayed_weights(weight_decay, mask_fn),           # g + wd * w on the masked tensors
        optax.ema(momentum, debias=False),                          # m_t: the state, and the output
        optax.masked(optax.scale_by_trust_ratio(), mask_fn),        # ||w|| / ||m||, 1 on zero norms
        optax.scale_by_learning_rate(learning_rate),
    )
