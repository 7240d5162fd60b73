"""Workload registry: names -> classes. Instantiate with knobs through `get_workload`.

Importing this package loads no workload module (and no JAX): scoring reads workloads.targets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from harness.errors import UserError  # not harness.spec: `import workloads.targets` stays JAX-free

if TYPE_CHECKING:
    from harness.spec import Workload


def _registry() -> dict[str, type]:
    # Imported lazily so that `import workloads` stays cheap and free of side effects.
    from workloads.bert import BertLarge32k, BertLarge65k, BertLarge65k32k
    from workloads.fashion_mnist import FashionMnistLeNet, FashionMnistResNet
    from workloads.imagenet import ImagenetResNet50, ImagenetResNet50Cosine6000, ImagenetResNet50Epochs90
    from workloads.pydocs_bert import PydocsBert

    return {cls.name: cls for cls in (FashionMnistResNet, FashionMnistLeNet,
                                      ImagenetResNet50, ImagenetResNet50Cosine6000, ImagenetResNet50Epochs90,
                                      BertLarge32k, BertLarge65k32k, BertLarge65k, PydocsBert)}


def workload_names() -> list[str]:
    return sorted(_registry())


def get_workload(name: str, knobs: Mapping[str, Any] | None = None) -> Workload:
    """The workload `name` configured with `knobs`; UserError listing the known names otherwise."""
    registry = _registry()
    if name not in registry:
        raise UserError(f"unknown workload {name!r}; known workloads: {', '.join(sorted(registry))}")
    return registry[name](knobs)
