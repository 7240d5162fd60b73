"""The run plan (harness/plan.py): built once from what the user asked for, validated before any
data is read, and the one place phases, hyperparameters, contexts and row ids are decided."""

from __future__ import annotations

import hashlib
import json

import jax
import numpy as np
import pytest

from harness import plan
from harness.errors import UserError


def test_plan_of_a_single_phase_workload() -> None:
    p = plan.build("fashion_mnist_resnet", "nesterov", hparams={"learning_rate": 2})
    (phase,) = p.phases
    assert (phase.phase.steps, phase.phase.global_batch_size, phase.phase.micro_batch_size) == (117, 1280, 64)
    assert phase.hparams["learning_rate"] == 2.0 and isinstance(phase.hparams["learning_rate"], float)
    assert phase.ctx.step_budget == p.budget == 117 and phase.ctx.global_batch_size == 1280
    assert p.hparams == dict(phase.hparams) and p.hparams_given == {"learning_rate": 2}
    assert p.config is None and p.config_label is None
    assert p.describe() == (f"fashion_mnist_resnet x nesterov [{p.config_id}]: budget 117 steps (117 steps "
                            "at batch 1280 (micro-batch 64)) on 1 device(s)")


def test_config_id_hashes_submission_code_hparams_knobs_and_budget() -> None:
    """The row id: sha256 of the canonical JSON of (name, code hash, hparams, knobs, budget), 10 hex
    digits."""
    p = plan.build("fashion_mnist_resnet", "nesterov")
    key = json.dumps({"submission": "nesterov", "source": p.source_hash, "hparams": p.hparams,
                      "knobs": p.workload.knobs, "budget": 117}, sort_keys=True, separators=(",", ":"))
    assert p.config_id == hashlib.sha256(key.encode()).hexdigest()[:10]
    assert plan.build("fashion_mnist_resnet", "nesterov", budget=39).config_id != p.config_id


def test_an_edited_submission_is_another_row(tmp_path: str) -> None:
    """Runs of an edited my_sgd.py must not land in the old file's row (issue 13)."""
    path = f"{tmp_path}/my_sgd.py"
    code = ('import jax\nDEFAULT_HPARAMS = {"learning_rate": 0.1}\n'
            'def init(params, hparams, ctx):\n    return ()\n'
            'def update(grads, state, params, hparams, ctx):\n'
            '    return jax.tree.map(lambda g: -hparams["learning_rate"] * g, grads), state\n')
    with open(path, "w") as f:
        f.write(code)
    before = plan.build("fashion_mnist_lenet", path)
    assert before.config_id == plan.build("fashion_mnist_lenet", path).config_id  # stable
    with open(path, "w") as f:
        f.write(code.replace("-hparams", "-2 * hparams"))
    assert plan.build("fashion_mnist_lenet", path).config_id != before.config_id
    # a built-in's row covers its module, the submissions modules it imports (transitively) and,
    # for a graft, both children (tests/test_submission_sources.py)
    from harness import submission_loader

    files = submission_loader.source_files(submission_loader.load("adam_graft_sgd"))
    names = {f.split("/submissions/")[-1] for f in files}
    assert {"adam_graft_sgd/submission.py", "adamw/submission.py", "sgd/submission.py",
            "lib/schedules.py"} <= names


def test_budget_scales_the_phases_of_bert() -> None:
    p = plan.build("pydocs_bert", "adamw", budget=10)
    assert [x.phase.steps for x in p.phases] == [9, 1] and p.budget == 10
    assert [x.ctx.phase_index for x in p.phases] == [0, 1]
    assert [x.ctx.global_batch_size for x in p.phases] == [128, 64]  # each phase's own batch


def test_named_config_label_is_formatted_after_validation() -> None:
    p = plan.build(None, "lars", config="mlperf", hparams={"learning_rate": 10}, knobs={"gamma0": 0.5})
    assert p.workload.name == "imagenet_resnet50" and p.config is not None
    assert p.config_label == "mlperf learning_rate=10 knobs:gamma0=0.5"
    assert p.phases[0].hparams["learning_rate"] == 10.0
    assert p.hparams_given["learning_rate"] == 10 and p.knobs_given["gamma0"] == 0.5
    with pytest.raises(UserError, match="is for workload imagenet_resnet50, not fashion_mnist_resnet"):
        plan.build("fashion_mnist_resnet", "lars", config="mlperf")


def test_per_phase_hparams_are_recorded_as_a_list() -> None:
    p = plan.build(None, "adamw", config="nado_table8_32k")
    assert isinstance(p.hparams, list) and len(p.hparams) == 2
    assert p.hparams[0]["learning_rate"] != p.hparams[1]["learning_rate"]


def test_graft_takes_its_childrens_config() -> None:
    p = plan.build(None, "adam_graft_sgd", config="pydocs_bert", hparams={"D.momentum": 0.5})
    assert p.phases[0].hparams["M.eps"] == 0.001 and p.phases[0].hparams["D.momentum"] == 0.5
    assert p.config_label == "pydocs_bert D.momentum=0.5"


@pytest.mark.parametrize("kwargs, message", [
    ({"workload": None}, "--workload is required"),
    ({"budget": 0}, "--budget must be a positive"),
    ({"hparams": {"lr": 1}}, "unknown hparam 'lr'"),
    ({"knobs": {"gamma0": 9}}, "outside its allowed range"),
])
def test_bad_input_is_refused_while_building(kwargs: dict, message: str) -> None:
    args = {"workload": "fashion_mnist_resnet", **kwargs}
    with pytest.raises(UserError, match=message):
        plan.build(args.pop("workload"), "nesterov", **args)


def test_abstract_batch_and_state_are_shapes_on_the_mesh() -> None:
    p = plan.build("fashion_mnist_resnet", "adamw")
    batch = p.abstract_batch(0)
    assert batch["x"].shape == (1280, 28, 28, 1) and batch["y"].dtype == np.int32
    assert batch["x"].sharding.mesh == p.mesh
    assert p.abstract_batch(0, batch_size=64)["x"].shape[0] == 64
    state = p.abstract_state()
    leaves = jax.tree.leaves(state)
    assert leaves and all(isinstance(x, jax.ShapeDtypeStruct) for x in leaves)
    assert p.per_device_batch(0, 4) == 320
    with pytest.raises(UserError, match="not a multiple of 3 device"):
        p.per_device_batch(0, 3)
