"""Test helpers: load submissions by path (as the harness does) and build a small typed param tree."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from harness import spec

REPO = Path(__file__).resolve().parent.parent
#: The built-in submissions whose optimizer(hparams, ctx) is one optax transformation (lib/protocol).
SUBMISSIONS = ("sgd", "momentum", "nesterov", "adagrad", "adamw", "bert_adamw", "lars", "lamb")

#: name -> (shape, ParamType): a conv weight, a dense weight, a BN scale, a BN bias and a bias.
LAYOUT: dict[str, tuple[tuple[int, ...], spec.ParamType]] = {
    "conv/kernel": ((3, 3, 2, 4), spec.ParamType.CONV_WEIGHT),
    "dense/kernel": ((6, 5), spec.ParamType.WEIGHT),
    "bn/scale": ((4,), spec.ParamType.BN_SCALE),
    "bn/bias": ((4,), spec.ParamType.BN_BIAS),
    "dense/bias": ((5,), spec.ParamType.BIAS),
}


def load_submission(name: str) -> ModuleType:
    """Import submissions/<name>/submission.py by file path under a private module name."""
    path = REPO / "submissions" / name / "submission.py"
    module_spec = importlib.util.spec_from_file_location(f"_test_submission_{name}", path)
    assert module_spec is not None and module_spec.loader is not None, path
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def nest(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"a/b": x} -> {"a": {"b": x}} (the Flax-like nesting the submissions see)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        outer, inner = key.split("/")
        out.setdefault(outer, {})[inner] = value
    return out


def flatten(tree: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{outer}/{inner}": value for outer, sub in tree.items() for inner, value in sub.items()}


def param_types() -> dict[str, dict[str, spec.ParamType]]:
    return nest({k: t for k, (_, t) in LAYOUT.items()})


def context(step_budget: int) -> spec.SubmissionContext:
    return spec.SubmissionContext(workload="golden", param_types=param_types(), phases=(
        spec.Phase(name="train", steps=step_budget, global_batch_size=8, micro_batch_size=8),))


def random_params(seed: int, zero: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Flat float64 params; names in `zero` start at 0 (e.g. a zero-initialised BN gamma)."""
    rng = np.random.default_rng(seed)
    return {k: np.zeros(shape) if k in zero else rng.normal(size=shape) for k, (shape, _) in LAYOUT.items()}


def random_grads(seed: int, steps: int, zero: tuple[tuple[int, str], ...] = ()
                 ) -> list[dict[str, np.ndarray]]:
    """Flat float64 gradients for `steps` steps; (step, name) pairs in `zero` are all-zero tensors."""
    rng = np.random.default_rng(seed)
    grads = [{k: 0.1 * rng.normal(size=shape) for k, (shape, _) in LAYOUT.items()} for _ in range(steps)]
    for step, name in zero:
        grads[step][name] = np.zeros_like(grads[step][name])
    return grads


@contextlib.contextmanager
def x64_mode(enabled: bool) -> Iterator[None]:
    """jax_enable_x64 set to `enabled` for the block, restored after (float64 goldens, float32 checks)."""
    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", enabled)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)


def assert_check_refuses(module: ModuleType, hparams: dict[str, Any], *fragments: str) -> None:
    """The submission's check_hparams, and its init (which checks first), raise a one-line UserError
    containing every fragment."""
    params = jax.tree.map(jnp.asarray, nest(random_params(0)))
    for call in (lambda: module.check_hparams(hparams, context(12)),
                 lambda: module.init(params, hparams, context(12))):
        try:
            call()
        except spec.UserError as e:
            message = str(e)
            assert "\n" not in message and all(f in message for f in fragments), message
        else:
            raise AssertionError(f"no UserError for {hparams}")


def workload_abstract(name: str, knobs: Mapping[str, Any] | None = None) -> tuple[Any, Any]:
    """(params as shapes, param types) of a registered workload's model with these knobs: traced
    only, nothing computed, even for BERT-Large; once per workload and knobs."""
    return _workload_abstract(name, tuple(sorted((knobs or {}).items())))


@functools.cache
def _workload_abstract(name: str, knobs: tuple[tuple[str, Any], ...]) -> tuple[Any, Any]:
    import workloads  # lazily: the registry imports every workload module
    from harness.training import abstract_init

    params, _, types = abstract_init(workloads.get_workload(name, dict(knobs)))
    return params, types
