r"""Which parameters the weight decay (L2 or decoupled) and layer-wise trust ratios apply to.

One hyperparameter decides it for every built-in that has it, ``exclude_norm_and_bias``:

* True (the default everywhere): weight-like tensors only (spec.weight_mask: kernels, embeddings),
  not batch/layer-norm scales and offsets nor biases. Nado et al. 2021 Sec. 2.1.3, footnote 19 and
  the MLPerf pipeline; for LARS and LAMB also "LARS on weights, momentum on BN/bias".
* False: every tensor. Nado et al. 2021 Fig. 4's "L2 variables" ablation of Configuration A (L2
  on all variables, App. B) and App. C.3's same-optimizer rows ("LARS/LARS", "LAMB/LAMB").
"""

from __future__ import annotations

from harness import spec
from submissions.lib.transforms import Mask


def from_hparams(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> Mask:
    """The mask of the transforms (submissions/lib/transforms.py): spec.weight_mask of the
    workload's param types when hparams["exclude_norm_and_bias"], else True (every parameter)."""
    return spec.weight_mask(ctx.param_types) if hparams["exclude_norm_and_bias"] else True
