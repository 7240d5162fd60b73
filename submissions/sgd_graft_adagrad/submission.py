r"""SGD#AdaGrad: grafting of SGD-with-momentum's step norms onto AdaGrad's directions (Agarwal et al.
Sec. 4, ResNet-50; Sec. 5 uses the global variant to discover an AdaGrad schedule).

    s_M = heavy-ball SGD step (the tuned momentum submission, hparams fixed),  s_D = AdaGrad step
    for each group rho (one tensor per group by default; "global" as in the paper's Figure 4):
        w^rho <- w^rho + ||s_M^rho|| / ||s_D^rho|| * s_D^rho          (w^rho unchanged if s_D^rho = 0)

The same as ``--submission=momentum#adagrad``. diagnostics(state) exposes ratio/<group>.
"""

from __future__ import annotations

from submissions.adagrad import submission as _d
from submissions.lib import graft_protocol
from submissions.momentum import submission as _m

_GRAFTED = graft_protocol.combine(graft_protocol.child_from_module(_m, "momentum"),
                                  graft_protocol.child_from_module(_d, "adagrad"))

#: Namespaced: "M.<hparam>" (momentum, fixed at its tuned defaults), "D.<hparam>" (adagrad, the ones to
#: tune, see search_space.json), "partition" (global | layerwise | param_type) and "lr_scale" (the
#: global learning-rate scalar Agarwal et al. App. A.1.1 tuned, 1.0: none).
DEFAULT_HPARAMS: dict[str, float | int | bool | str] = {**_GRAFTED.defaults}

#: M and D as built-in submission names: the harness applies their named configs (--config) as M./D.
GRAFT_CHILDREN = _GRAFTED.children

#: Each child's STATIC_HPARAMS under its prefix (harness/spec.py: floats that change the program).
STATIC_HPARAMS: frozenset[str] = _GRAFTED.static_hparams

#: Each child's VALID_RANGES under its prefix (check_hparams checks them through the children) and
#: the graft's own lr_scale (graft_protocol.GRAFT_RANGES).
VALID_RANGES = graft_protocol.namespaced_ranges(_m.VALID_RANGES, _d.VALID_RANGES)

init, update, next_phase, check_hparams, diagnostics = (
    _GRAFTED.init, _GRAFTED.update, _GRAFTED.next_phase, _GRAFTED.check_hparams, _GRAFTED.diagnostics)
