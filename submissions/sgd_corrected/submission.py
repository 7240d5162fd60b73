r"""SGD with fixed per-group learning-rate corrections discovered by grafting (Agarwal et al. Sec. 5).

    g_t     = grad l(w_t) + lambda * w_t           (lambda on weights only)
    s_t     = the sgd submission's step            (-eta_t g_t, or -eta_t v_t with momentum)
    w_{t+1}^rho = w_t^rho + c_rho * s_t^rho        for each group rho of the partition

c_rho: the multipliers of hparams["corrections"], a JSON file from ``python -m harness
discover-schedule`` (medians of ||s_M|| / ||s_D|| over the first steps of a grafted run M#SGD,
optionally rounded); groups are named as in grafting under hparams["partition"] (the file's
partition, if it records one, must agree). A group without multiplier, or a multiplier for a
group the model does not have, is a one-line error. Multiplying the step by c_rho after the
momentum buffer equals multiplying that group's learning rate by c_rho (the buffer is linear).
"""

from __future__ import annotations

import optax

from harness import spec
from submissions.lib import corrections, protocol, valid_ranges
from submissions.sgd import submission as _sgd

DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {
    **_sgd.DEFAULT_HPARAMS,
    "momentum": 0.9,
    "corrections": "",  # path of the JSON file written by `python -m harness discover-schedule`
    "partition": "layerwise",
}


#: No float changes the program (the sgd submission's: momentum is traced; the corrections file
#: and the partition are strings, static).
STATIC_HPARAMS: frozenset[str] = _sgd.STATIC_HPARAMS

#: The sgd submission's (corrections and partition are strings, checked by check).
VALID_RANGES: valid_ranges.Ranges = _sgd.VALID_RANGES


def optimizer(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> optax.GradientTransformation:
    """The sgd submission's optimizer, then each group's step times its multiplier (the file's)."""
    path = hparams["corrections"]
    multipliers, _ = corrections.load(path)
    return optax.chain(_sgd.optimizer(hparams, ctx),
                       corrections.scale_by_group(multipliers, hparams["partition"], ctx.param_types,
                                                  f"corrections file {path}"))


def check(hparams: spec.Hparams, ctx: spec.SubmissionContext) -> None:
    """spec.UserError (one line) for the sgd submission's bad values (the schedule), an
    unknown partition, and a corrections file that is missing, does not parse, was discovered
    under another partition or does not name exactly the model's groups (the file is read here)."""
    _sgd.check(hparams, ctx)
    path = hparams["corrections"]
    multipliers, partition = corrections.load(path)
    if partition is not None and partition != hparams["partition"]:
        raise spec.UserError(f"corrections file {path} was discovered with partition {partition!r} "
                             f"but hparam partition is {hparams['partition']!r}; make them agree")
    corrections.check_groups(multipliers, hparams["partition"], ctx.param_types,
                             f"corrections file {path}")


init, update, next_phase, check_hparams = protocol.from_optax(optimizer, check, "sgd_corrected",
                                                                 VALID_RANGES)
