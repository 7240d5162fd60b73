r"""Adam#SGD: layer-wise grafting of AdamW's step norms onto SGD's directions (Agarwal et al. Sec. 4).

    s_M = AdamW step (the adamw submission, hparams fixed),  s_D = SGD step (the sgd submission)
    for each group rho (one tensor per group by default):
        w^rho <- w^rho + ||s_M^rho|| / ||s_D^rho|| * s_D^rho          (w^rho unchanged if s_D^rho = 0)

The same as ``--submission=adamw#sgd`` with D.momentum = 0.9 (SGD with momentum, the paper's D).
D's learning rate and schedule cancel in the ratio under any partition: only its direction counts.
diagnostics(state) exposes the latest ratio per group as ratio/<group>.
"""

from __future__ import annotations

from submissions.adamw import submission as _m
from submissions.lib import graft_protocol
from submissions.sgd import submission as _d

_GRAFTED = graft_protocol.combine(graft_protocol.child_from_module(_m, "adamw"),
                                  graft_protocol.child_from_module(_d, "sgd"))

#: Namespaced: "M.<hparam>" (adamw, fixed at its tuned defaults), "D.<hparam>" (sgd, the ones to
#: tune, see search_space.json), "partition" (global | layerwise | param_type) and "lr_scale" (the
#: global learning-rate scalar Agarwal et al. App. A.1.1 tuned, 1.0: none).
DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {**_GRAFTED.defaults,
                                                    "D.momentum": 0.9}

#: M and D as built-in submission names: the harness applies their named configs (--config) as M./D.
GRAFT_CHILDREN = _GRAFTED.children

#: Each child's STATIC_HPARAMS under its prefix (harness/spec.py: floats that change the program).
STATIC_HPARAMS: frozenset[str] = _GRAFTED.static_hparams

#: Each child's VALID_RANGES under its prefix (check_hparams checks them through the children) and
#: the graft's own lr_scale (graft_protocol.GRAFT_RANGES).
VALID_RANGES = graft_protocol.namespaced_ranges(_m.VALID_RANGES, _d.VALID_RANGES)

init, update, next_phase, check_hparams, diagnostics = (
    _GRAFTED.init, _GRAFTED.update, _GRAFTED.next_phase, _GRAFTED.check_hparams, _GRAFTED.diagnostics)
