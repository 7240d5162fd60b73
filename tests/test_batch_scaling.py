"""The batch-size axis (harness/batch_scaling.py): a workload's variant at another global batch,
its steps by the declared rule (fixed epochs, or a paper's listed counts), its cadences, target and
row id; You et al. 2019 Tables 4 and 5 as the config you2019_table4 / you2019_table5 at each of their
batch sizes, checked against the paper's numbers."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import Result, file_digest
from test_bad_input import assert_one_line_error, harness_run

from harness import batch_scaling, plan, store, study
from harness.errors import UserError
from harness.runner import RunOptions
from harness.spec import Phase
from workloads import get_workload, targets
from workloads.fashion_mnist import FashionMnistResNet
from workloads.image_classification import PRECISE_BN_SEED, DeviceSplits

# --- You et al. 2019, transcribed from ../shared/papers/you2019_lamb.md ----------------------------
#: Table 4 (BERT, fixed epochs): batch size -> (x of the learning rate 5/(2^x x 10^3), warmup ratio).
YOU_TABLE4 = {512: (3.0, Fraction(1, 320)), 1024: (2.5, Fraction(1, 160)), 2048: (2.0, Fraction(1, 80)),
              4096: (1.5, Fraction(1, 40)), 8192: (1.0, Fraction(1, 20)), 16384: (0.5, Fraction(1, 10)),
              32768: (0.0, Fraction(1, 5))}
#: Table 1 (LAMB rows): batch size -> steps ("1000k", "500k", ..., "15625").
YOU_TABLE1_STEPS = {512: 1_000_000, 1024: 500_000, 2048: 250_000, 4096: 125_000, 8192: 62_500,
                    16384: 31_250, 32768: 15_625}
#: Table 5 (ResNet-50, 90 epochs): batch size -> (x of the learning rate 4/(2^x x 100), warmup epochs).
YOU_TABLE5 = {512: (3.0, 0.3125), 1024: (2.5, 0.625), 2048: (2.0, 1.25), 4096: (1.5, 2.5), 8192: (1.0, 5.0),
              16384: (0.5, 10.0), 32768: (0.0, 20.0)}
IMAGENET_TRAIN = 1_281_167  # ILSVRC 2012 training images


# --- the rule ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch, steps, eval_every", [(640, 234, 26), (2560, 59, 7), (5120, 30, 4),
                                                      (64, 2340, 260)])
def test_fixed_epochs_on_fashion_mnist_resnet(batch: int, steps: int, eval_every: int) -> None:
    """117 steps x 1,280 examples = 149,760 examples at every batch: ceil(149,760 / B) steps; an
    evaluation every ceil(13 x 1,280 / B) steps (three per epoch, as at 1,280)."""
    wl = FashionMnistResNet()
    v = batch_scaling.variant(wl, batch)
    (phase,) = v.phases
    assert (phase.global_batch_size, phase.micro_batch_size, phase.steps) == (batch, 64, steps)
    assert phase.steps == math.ceil(117 * 1280 / batch) and v.eval_every_steps == eval_every
    assert (v.checkpoint_every, v.target) == (0, None)
    resized = batch_scaling.resized(wl, batch)
    assert resized.phases == v.phases and resized.eval_every_steps == eval_every
    assert (wl.global_batch_size, wl.step_budget, wl.eval_every_steps) == (1280, 117, 13)  # untouched


def test_the_workloads_own_batch_is_no_variant() -> None:
    wl = FashionMnistResNet()
    assert batch_scaling.resized(wl, None) is wl and batch_scaling.resized(wl, 1280) is wl
    default = plan.build("fashion_mnist_resnet", "nesterov")
    same = plan.build("fashion_mnist_resnet", "nesterov", batch_size=1280)
    assert same.batch_size is None and same.config_id == default.config_id


def test_a_variant_is_its_own_row_and_its_id_hashes_the_batch() -> None:
    p = plan.build("fashion_mnist_resnet", "nesterov", batch_size=2560)
    assert p.batch_size == 2560 and p.budget == 59 and p.phases[0].ctx.global_batch_size == 2560
    key = json.dumps({"submission": "nesterov", "source": p.source_hash, "hparams": p.hparams,
                      "knobs": p.workload.knobs, "budget": 59, "global_batch_size": 2560},
                     sort_keys=True, separators=(",", ":"))
    assert p.config_id == hashlib.sha256(key.encode()).hexdigest()[:10]
    # the same budget at another batch is another row
    assert plan.build("fashion_mnist_resnet", "nesterov", batch_size=2560, budget=5).config_id != \
        plan.build("fashion_mnist_resnet", "nesterov", batch_size=640, budget=5).config_id
    # --budget applies to the variant's phases
    assert [x.phase.global_batch_size for x in plan.build("fashion_mnist_resnet", "nesterov", batch_size=640,
                                                          budget=3).phases] == [640]


def test_valid_batch_sizes_are_the_multiples_of_the_unit() -> None:
    """batch_unit against brute force: B is valid iff every phase's B_k0 * B / B_10 is a whole
    multiple of its micro-batch."""
    cases = [(Phase(name="a", steps=5, global_batch_size=12, micro_batch_size=4),
              Phase(name="b", steps=5, global_batch_size=8, micro_batch_size=4)),
             (Phase(name="a", steps=5, global_batch_size=65536, micro_batch_size=64),
              Phase(name="b", steps=5, global_batch_size=32768, micro_batch_size=16)),
             (Phase(name="a", steps=5, global_batch_size=128, micro_batch_size=128, seq_len=64),
              Phase(name="b", steps=5, global_batch_size=64, micro_batch_size=64, seq_len=128))]
    for phases in cases:
        b10 = phases[0].global_batch_size

        def valid(b: int, phases: tuple[Phase, ...] = phases, b10: int = b10) -> bool:
            return all((b * p.global_batch_size) % (b10 * p.micro_batch_size) == 0 for p in phases)

        unit = batch_scaling.batch_unit(phases)
        assert [b for b in range(1, 1025) if valid(b)] == list(range(unit, 1025, unit))
    assert [batch_scaling.batch_unit(c) for c in cases] == [12, 64, 128]


def test_multi_phase_workloads_keep_their_phase_ratios() -> None:
    """pydocs_bert: 128 x seq 64 then 64 x seq 128; at 256 the second phase runs at 128, both phases
    keep their examples (270 x 128 / 256, 30 x 64 / 128 steps)."""
    wl = get_workload("pydocs_bert")
    v = batch_scaling.variant(wl, 256)
    assert [(p.global_batch_size, p.micro_batch_size, p.seq_len, p.steps) for p in v.phases] == \
        [(256, 128, 64, 135), (128, 64, 128, 15)]
    assert v.eval_every_steps == 20  # every 40 steps at 128: the same examples
    with pytest.raises(UserError, match="valid batch sizes are the multiples of 128"):
        batch_scaling.variant(wl, 64)


def test_a_workload_without_the_hook_is_refused() -> None:
    @dataclasses.dataclass
    class Fixed:
        name: str = "fixed"
        phases: tuple[Phase, ...] = (Phase(name="p", steps=4, global_batch_size=8, micro_batch_size=8),)

    with pytest.raises(UserError, match="workload fixed does not take --batch_size"):
        batch_scaling.resized(Fixed(), 16)  # type: ignore[arg-type]
    assert batch_scaling.resized(Fixed(), 8).phases[0].global_batch_size == 8  # type: ignore[arg-type]


# --- targets ---------------------------------------------------------------------------------------


@pytest.fixture
def variant_targets(tmp_path: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A targets file holding fashion_mnist_resnet and its variant at 2560."""
    shipped = targets.read_targets()
    path = os.path.join(tmp_path, "targets.json")
    with open(path, "w") as f:
        json.dump({"fashion_mnist_resnet": shipped["fashion_mnist_resnet"],
                   "fashion_mnist_resnet@batch=2560": {"target": 0.8, "step_budget": 59}}, f)
    monkeypatch.setattr(targets, "TARGETS_FILE", path)
    targets.target_for.cache_clear()
    yield path
    targets.target_for.cache_clear()


def test_a_variant_takes_its_own_target_else_the_workloads(variant_targets: str) -> None:
    base = get_workload("fashion_mnist_resnet")
    assert targets.variant_key("fashion_mnist_resnet", 2560) == "fashion_mnist_resnet@batch=2560"
    assert targets.variant_target("fashion_mnist_resnet", 2560) == 0.8
    assert targets.variant_target("fashion_mnist_resnet", 640) is None
    assert plan.build("fashion_mnist_resnet", "nesterov", batch_size=2560).workload.target == 0.8
    assert plan.build("fashion_mnist_resnet", "nesterov", batch_size=640).workload.target == base.target


# --- precise BN: the same statistics at every batch size -------------------------------------------


@pytest.mark.slow
def test_precise_bn_statistics_do_not_change_with_the_training_batch() -> None:
    """A variant's evaluation recomputes the BN statistics on the default workload's batches (the
    first 1,280 of the PRECISE_BN_SEED stream), not on a batch of its own size."""
    rng = np.random.default_rng(0)
    n = 6000
    data = DeviceSplits(jnp.asarray(rng.normal(size=(n, 28, 28, 1)).astype(np.float32)),
                        jnp.asarray(rng.integers(0, 10, n).astype(np.int32)), {})
    base = FashionMnistResNet()
    small = batch_scaling.resized(base, 640)
    assert isinstance(small, FashionMnistResNet) and small.statistics_source is base
    params, model_state, _ = base.init(jax.random.PRNGKey(0))
    expected = base.eval_model_state(params, model_state, data)
    got = small.eval_model_state(params, model_state, data)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), expected, got))
    # what the variant's own stream would have given (640 other examples) differs
    xs = next(small.train_batches(data, PRECISE_BN_SEED))["x"]
    assert xs.shape[0] == 640
    alone = base._precise_bn(params, model_state, xs[None])
    assert not jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.allclose(a, b)), expected, alone))


# --- You et al. 2019 Table 4 (BERT) and Table 5 (ResNet-50) ----------------------------------------


@pytest.mark.parametrize("batch", sorted(YOU_TABLE4))
def test_you2019_table4_column(batch: int) -> None:
    """lamb --config=you2019_table4 --batch_size=B is Table 4's column B: Table 1's steps split 9/10
    at seq 128 and 1/10 at seq 512 (the paper's 14,063 + 1,562 at 32K), the learning rate
    5/(2^x x 10^3) in both phases, a phase-1 warmup of ratio x steps = 3,125."""
    p = plan.build(None, "lamb", config="you2019_table4", batch_size=batch)
    x, ratio = YOU_TABLE4[batch]
    total = YOU_TABLE1_STEPS[batch]
    steps = [ph.phase.steps for ph in p.phases]
    assert sum(steps) == total and [ph.phase.global_batch_size for ph in p.phases] == [batch, batch]
    assert steps == ([14_063, 1_562] if batch == 32768 else [total * 9 // 10, total // 10])
    for ph in p.phases:
        assert ph.hparams["learning_rate"] == pytest.approx(5 / (2 ** x * 10 ** 3), rel=1e-12)
        assert ph.traced["learning_rate"] == ph.hparams["learning_rate"]  # what the compiled step gets
    assert ratio * total == 3125 == p.phases[0].hparams["warmup_steps"]
    assert p.phases[1].hparams["warmup_steps"] == 781
    assert p.hparams[0]["learning_rate"] == 5e-3  # recorded as given, with the rule
    assert (p.hparams[0]["lr_scaling"], p.hparams[0]["lr_reference_batch_size"]) == ("sqrt", 32768)


@pytest.mark.slow
def test_you2019_table4_at_32k_is_you2019_32k() -> None:
    table4 = plan.build(None, "lamb", config="you2019_table4")
    assert table4.workload.name == "bert_large_32k" and table4.batch_size is None
    reference = plan.build(None, "lamb", config="you2019_32k")
    assert [ph.hparams for ph in table4.phases] == [ph.hparams for ph in reference.phases]
    # 64K: the steps Nado et al. Table 4 lists (bert_large_65k), sqrt(2) x 5e-3 (you2019_65k_32k's phase 1)
    p64 = plan.build(None, "lamb", config="you2019_table4", batch_size=65536)
    assert [ph.phase.steps for ph in p64.phases] == [7037, 781]
    mixed = plan.build(None, "lamb", config="you2019_65k_32k")
    assert p64.phases[0].hparams["learning_rate"] == pytest.approx(mixed.phases[0].hparams["learning_rate"],
                                                                   rel=1e-7)


@pytest.mark.parametrize("batch", sorted(YOU_TABLE5))
def test_you2019_table5_column(batch: int) -> None:
    """lamb --config=you2019_table5 --batch_size=B is Table 5's column B: 90 epochs of ImageNet,
    ceil(90 x 1,281,167 / B) steps; the learning rate 4/(2^x x 100); the warmup epochs in steps."""
    p = plan.build(None, "lamb", config="you2019_table5", batch_size=batch)
    x, warmup_epochs = YOU_TABLE5[batch]
    (ph,) = p.phases
    assert ph.phase.global_batch_size == batch and ph.phase.micro_batch_size == 64
    assert ph.phase.steps == math.ceil(90 * IMAGENET_TRAIN / batch)
    assert ph.hparams["learning_rate"] == pytest.approx(4 / (2 ** x * 100), rel=1e-12)
    assert ph.hparams["warmup_steps"] == round(warmup_epochs * IMAGENET_TRAIN / batch) == 782
    assert p.workload.eval_every_steps == math.ceil(157 * 32768 / batch)  # every 4 epochs


def test_you2019_90_epochs_at_16k_are_the_papers_7038_iterations() -> None:
    """Tables 9-25: "batch size = 16384, 90 epochs, 7038 iterations"."""
    assert batch_scaling.variant(get_workload("imagenet_resnet50_90epochs"), 16384).phases[0].steps == 7038
    assert get_workload("imagenet_resnet50_90epochs").step_budget == 3519


# --- tuning studies ----------------------------------------------------------------------------------


def test_a_study_of_a_variant_has_its_own_name_and_settings(tmp_path: str) -> None:
    options = RunOptions(results=os.path.join(tmp_path, "r.db"))
    spec = study.StudySpec(workload="fashion_mnist_resnet", submission="nesterov", trials=1, batch_size=2560)
    runner = study.StudyRunner(spec, options, "cmd")
    assert runner.name(0).startswith("nesterov@fashion_mnist_resnet@batch=2560/")
    assert runner.settings(0)["batch_size"] == 2560 and runner.settings(0)["budget"] == 59
    default = study.StudyRunner(dataclasses.replace(spec, batch_size=None), options, "cmd")
    assert default.name(0).startswith("nesterov@fashion_mnist_resnet/") and "batch_size" not in default.settings(0)


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch, expected", [
    ("1000", "--batch_size=1000 does not split into fashion_mnist_resnet's micro-batches (64, kept at every "
             "batch size); valid batch sizes are the multiples of 64 (64, 128, 256, 512, ...)"),
    ("0", "--batch_size must be a positive global batch size, got 0"),
    ("-64", "--batch_size must be a positive global batch size, got -64"),
    ("51200", "--batch_size=51200 exceeds the 50,000 training examples of fashion_mnist_resnet; give at most "
              "49984"),
    ("many", "flag --batch_size=many"),
])
def test_bad_batch_size_is_one_line(batch: str, expected: str, results_db: str,
                                    main_in_process: Callable[..., Result]) -> None:
    before = file_digest(results_db)
    assert_one_line_error(main_in_process("harness", *harness_run(results_db, [f"--batch_size={batch}"])),
                          expected)
    assert file_digest(results_db) == before


# --- end to end ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_variant_run_is_recorded_at_its_batch(tmp_path: str, main_in_process: Callable[..., Result]) -> None:
    """harness run --batch_size=640: the run records batch 640, the variant's row id and budget; the
    leaderboard shows it in a section of its batch."""
    db = os.path.join(tmp_path, "r.db")
    args = ["run", "--workload=fashion_mnist_resnet", "--submission=nesterov", "--seeds=0", "--budget=2",
            "--batch_size=640", f"--results={db}", "--progress=false"]
    result = main_in_process("harness", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = plan.build("fashion_mnist_resnet", "nesterov", budget=2, batch_size=640)
    with store.ResultsReader(db) as reader:
        (run,) = reader.runs().to_dict("records")
    assert (run["global_batch_size"], run["step_budget"], run["config_id"], run["status"]) == \
        (640, 2, expected.config_id, "completed")
    assert expected.config_id != plan.build("fashion_mnist_resnet", "nesterov", budget=2).config_id
    board = main_in_process("scoring", "leaderboard", f"--results={db}", f"--out={tmp_path}/lb")
    assert "target 83.80%, batch 640" in board.stdout


def test_set_target_of_a_variant_writes_its_own_entry(variant_targets: str, monkeypatch: pytest.MonkeyPatch,
                                                      main_in_process: Callable[..., Result]) -> None:
    """python -m harness.set_target --batch_size=640: the procedure's runs are the variant's (their
    plans at batch 640), the entry is `fashion_mnist_resnet@batch=640` with the variant's budget;
    the workload's own entry stays. (The training itself is replaced by fixed outcomes here.)"""
    from harness import set_target
    from harness.runner import RunSummary

    planned: list[tuple[int, int]] = []

    def fake_sweep(run_plan: plan.RunPlan, options: RunOptions) -> list[RunSummary]:
        planned.append((run_plan.batch_size or 0, run_plan.budget))
        lr = run_plan.hparams["learning_rate"]
        return [RunSummary(0, seed, "completed", run_plan.budget, None, None, 0.5 + 0.1 * lr + 0.01 * seed, None,
                           1.0, 0.1) for seed in options.seeds]

    monkeypatch.setattr(set_target, "run_sweep", fake_sweep)
    before = targets.read_targets()["fashion_mnist_resnet"]
    result = main_in_process("harness.set_target", "--workload=fashion_mnist_resnet", "--batch_size=640",
                             '--grid={"learning_rate": [0.5, 1]}', "--seeds=0-2", "--results=/tmp/unused.db")
    assert result.returncode == 0, result.stderr
    assert set(planned) == {(640, 234)}
    entries = targets.read_targets()
    assert entries["fashion_mnist_resnet"] == before
    entry = entries["fashion_mnist_resnet@batch=640"]
    assert (entry["target"], entry["step_budget"], entry["baseline_hparams"]) == (0.61, 234, {"learning_rate": 1})
    assert "--batch_size=640" in entry["command"]
    assert targets.variant_target("fashion_mnist_resnet", 640) == 0.61
