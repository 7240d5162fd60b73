"""Learning-rate scaling rules (harness/lr_scaling.py): the arithmetic against the papers' numbers,
how the harness applies a declared rule (scaled rates to the submission, the rates as given and
the rule to the results, ids unchanged without a rule) and its bad input."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pytest
from conftest import Result, file_digest
from test_bad_input import assert_one_line_error, harness_run

from harness import lr_scaling, plan
from harness.errors import UserError

SQRT = lr_scaling.LrScaling("sqrt", 32768)


@pytest.mark.parametrize("batch, x", [(512, 3.0), (1024, 2.5), (2048, 2.0), (4096, 1.5), (8192, 1.0),
                                      (16384, 0.5), (32768, 0.0)])
def test_sqrt_rule_gives_you2019_tables_4_and_5(batch: int, x: float) -> None:
    """You et al. 2019: BERT 5/(2^x x 10^3) (Table 4), ResNet-50 4/(2^x x 100) (Table 5), x falling
    by 0.5 per doubling of the batch, from the 32K column."""
    assert 5e-3 * SQRT.factor(batch) == pytest.approx(5 / (2 ** x * 10 ** 3), rel=1e-14)
    assert 0.04 * SQRT.factor(batch) == pytest.approx(4 / (2 ** x * 100), rel=1e-14)


def test_linear_rule_gives_goyal2017() -> None:
    """Goyal et al. 2017 Sec. 2.1/5.1: eta = 0.1 * kn / 256, so 3.2 at kn = 8,192 and 0.1 at 256."""
    rule = lr_scaling.LrScaling("linear", 256)
    assert [0.1 * rule.factor(b) for b in (256, 1024, 8192)] == pytest.approx([0.1, 0.4, 3.2], rel=1e-15)
    assert 0.1 * rule.factor(128) == pytest.approx(0.05, rel=1e-15)


def test_parse_and_scale() -> None:
    assert lr_scaling.parse({"learning_rate": 1.0}) == ({"learning_rate": 1.0}, None)
    assert lr_scaling.parse({"learning_rate": 1.0, "lr_scaling": "none"}) == ({"learning_rate": 1.0}, None)
    assert lr_scaling.parse({"lr_scaling": "linear", "lr_reference_batch_size": 64}) == \
        ({}, lr_scaling.LrScaling("linear", 64))
    h = {"learning_rate": 1.0, "final_learning_rate": 1e-4, "init_learning_rate": 0.0, "momentum": 0.9,
         "M.learning_rate": 0.5, "D.learning_rate": 2.0, "warmup_steps": 10, "schedule": "cosine"}
    scaled = lr_scaling.scaled(h, lr_scaling.LrScaling("sqrt", 1280), 5120, "s")
    assert scaled == {**h, "learning_rate": 2.0, "final_learning_rate": 2e-4, "M.learning_rate": 1.0,
                      "D.learning_rate": 4.0}
    assert lr_scaling.scaled(h, None, 5120, "s") == h
    assert lr_scaling.recorded(h, SQRT) == {**h, "lr_scaling": "sqrt", "lr_reference_batch_size": 32768}


@pytest.mark.parametrize("hparams, expected", [
    ({"lr_scaling": "cubic"}, "hparam lr_scaling='cubic': use one of none, sqrt, linear"),
    ({"lr_scaling": "sqrt"}, "hparam lr_scaling=sqrt needs lr_reference_batch_size: the positive integer batch "
                             "size its learning rates are given for (e.g. 32768), got None"),
    ({"lr_scaling": "sqrt", "lr_reference_batch_size": 0.5}, "got 0.5"),
    ({"lr_scaling": "sqrt", "lr_reference_batch_size": True}, "got True"),
    ({"lr_reference_batch_size": 256}, "hparam lr_reference_batch_size is given without a rule"),
])
def test_malformed_rules(hparams: dict, expected: str) -> None:
    with pytest.raises(UserError, match=re.escape(expected)):
        lr_scaling.parse(hparams)


def test_the_harness_scales_what_the_submission_sees_and_records_the_rule() -> None:
    rule = {"lr_scaling": "sqrt", "lr_reference_batch_size": 1280}
    p = plan.build("fashion_mnist_resnet", "nesterov", hparams={"learning_rate": 1.0, **rule}, batch_size=5120)
    (phase,) = p.phases
    assert phase.hparams["learning_rate"] == 2.0 == phase.traced["learning_rate"]
    assert phase.hparams["final_learning_rate"] == 2e-4 and "lr_scaling" not in phase.hparams
    assert p.hparams["learning_rate"] == 1.0 and {k: p.hparams[k] for k in rule} == rule
    # at the reference batch the rates are the given ones, but the row declares its rule
    ref = plan.build("fashion_mnist_resnet", "nesterov", hparams={"learning_rate": 1.0, **rule})
    plain = plan.build("fashion_mnist_resnet", "nesterov", hparams={"learning_rate": 1.0})
    assert ref.phases[0].hparams == plain.phases[0].hparams and ref.config_id != plain.config_id
    # "none" is no rule: the same row as without
    none = plan.build("fashion_mnist_resnet", "nesterov", hparams={"learning_rate": 1.0, "lr_scaling": "none"})
    assert none.config_id == plain.config_id and none.hparams == plain.hparams


def test_a_graft_scales_both_childrens_rates() -> None:
    p = plan.build("fashion_mnist_resnet", "adamw#sgd", budget=3, batch_size=640,
                   hparams={"lr_scaling": "linear", "lr_reference_batch_size": 1280})
    h, defaults = p.phases[0].hparams, p.submission.defaults
    assert h["M.learning_rate"] == defaults["M.learning_rate"] / 2
    assert h["D.learning_rate"] == defaults["D.learning_rate"] / 2


def test_each_phase_scales_to_its_own_batch() -> None:
    """You et al.'s 64K/32K mixed batch: the rule gives sqrt(2) x the 32K rate in phase 1 (64K)
    and the 32K rate in phase 2 (32K)."""
    p = plan.build("bert_large_65k_32k", "lamb", hparams={"learning_rate": 5e-3, "lr_scaling": "sqrt",
                                                        "lr_reference_batch_size": 32768})
    rates = [ph.hparams["learning_rate"] for ph in p.phases]
    assert rates == pytest.approx([5e-3 * math.sqrt(2), 5e-3], rel=1e-15)


def test_a_rule_needs_a_learning_rate(tmp_path: str) -> None:
    path = f"{tmp_path}/no_lr.py"
    with open(path, "w") as f:
        f.write("import jax\nDEFAULT_HPARAMS = {'step': 0.1}\ndef init(params, hparams, ctx):\n    return ()\n"
                "def update(grads, state, params, hparams, ctx):\n"
                "    return jax.tree.map(lambda g: -hparams['step'] * g, grads), state\n")
    with pytest.raises(UserError, match="submission no_lr has no learning rate to scale"):
        plan.build("fashion_mnist_resnet", path, hparams={"lr_scaling": "linear", "lr_reference_batch_size": 8})


@pytest.mark.parametrize("hparams, expected", [
    ('{"lr_scaling": "square"}', "hparam lr_scaling='square': use one of none, sqrt, linear"),
    ('{"lr_scaling": "linear"}', "hparam lr_scaling=linear needs lr_reference_batch_size"),
    ('{"lr_scaling": "linear", "lr_reference_batch_size": 1280, "learning_rate": -1}',
     "submission nesterov: hparam learning_rate = -1.0 is outside [0, inf)"),
])
def test_bad_rules_on_the_command_line(hparams: str, expected: str, results_db: str,
                                       main_in_process: Callable[..., Result]) -> None:
    """One line, exit 2, the results untouched; the submission's valid ranges see the scaled rates."""
    before = file_digest(results_db)
    assert_one_line_error(main_in_process("harness", *harness_run(results_db, [f"--hparams={hparams}"])), expected)
    assert file_digest(results_db) == before


def test_a_childs_config_declares_the_rule_for_the_graft() -> None:
    """lamb_graft_sgd takes LAMB's you2019_table4 as M.*; its rule keys stay unprefixed (the graft's)."""
    p = plan.build(None, "lamb_graft_sgd", config="you2019_table4", batch_size=512)
    recorded = p.hparams[0]
    assert (recorded["lr_scaling"], recorded["lr_reference_batch_size"], recorded["M.learning_rate"]) == \
        ("sqrt", 32768, 5e-3)
    assert p.phases[0].hparams["M.learning_rate"] == pytest.approx(5e-3 / 8, rel=1e-15)
