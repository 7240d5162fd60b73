r"""Optional global-norm gradient clipping before the optimizer, from ``hparams["grad_clip_norm"]``.

The official BERT code (google-research/bert optimization.py) and Google's LAMB pretraining code
(google-research/albert optimization.py) both run ``tf.clip_by_global_norm(grads, clip_norm=1.0)``
before the optimizer. With c = grad_clip_norm::

    g <- g * min(1, c / ||g||_2)        ||g||_2 over all parameters at once     (c > 0)
    g unchanged                                                                 (c = 0)

This is optax.clip_by_global_norm (no change when ||g||_2 < c). The global norm is that of the
gradient the submission's update receives, i.e. of the whole (all-reduced) batch: the BERT code
on TPU clips each replica's gradient before CrossShardOptimizer sums them across replicas.

grad_clip_norm is a static hyperparameter (harness/spec.py): c = 0 means "no clipping transform",
so its value changes the program. A submission using this module lists STATIC_HPARAMS among its
own, and VALID_RANGES (c >= 0) among its valid ranges (submissions/lib/valid_ranges.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import optax

from submissions.lib import valid_ranges

#: The hparams of this module that a submission must declare static (its STATIC_HPARAMS).
STATIC_HPARAMS: frozenset[str] = frozenset({"grad_clip_norm"})


#: The valid range of grad_clip_norm, for a submission's VALID_RANGES.
VALID_RANGES: dict[str, valid_ranges.Range] = {
    "grad_clip_norm": valid_ranges.at_least(0.0, "0 disables clipping; the BERT code clips to 1.0")}


def from_hparams(hparams: Mapping[str, Any]) -> optax.GradientTransformation:
    """optax.clip_by_global_norm(c) for c = grad_clip_norm > 0, else optax.identity().

    Both have the same (empty) state, so a state built with one value continues under another
    (next_phase without restart_per_phase, when the phases' grad_clip_norm differ).
    """
    c = hparams.get("grad_clip_norm", 0.0)
    if isinstance(c, jax.core.Tracer):
        raise TypeError("grad_clip_norm is traced: a submission using submissions/lib/clipping.py "
                        "must list it in STATIC_HPARAMS (clipping.STATIC_HPARAMS)")
    return optax.clip_by_global_norm(c) if c > 0 else optax.identity()


def clipped(hparams: Mapping[str, Any], inner: optax.GradientTransformation
            ) -> optax.GradientTransformation:
    """``inner`` after from_hparams(hparams): the clipping is the first transform of the chain."""
    return optax.chain(from_hparams(hparams), inner)
