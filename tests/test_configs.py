"""Named paper configurations (submissions/<sub>/configs/<name>.json): every file loads, names a
registered workload, has valid hparams (one mapping per phase when a list) and knobs, builds its
optimizer and schedule for each phase; spot checks of values against the papers' tables."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from _submission_helpers import REPO, workload_abstract

from harness import configs, plan, spec
from harness import submission_loader as submissions
from submissions.lib import schedules

CONFIG_FILES = sorted(REPO.glob("submissions/*/configs/*.json"))

#: The configurations reproduced from the papers, and the tuned ones of the issue-15 studies
#: (`<workload>_tuned`, checked against the studies' database in test_tuned_configs_published.py).
EXPECTED = {
    "nesterov": {"config_a", "config_b", "table5", "nado_fig4_resnet_v1", "nado_fig4_bn_init",
                 "nado_fig4_virtual_bn", "nado_fig4_l2_variables", "nado_table2_p_warmup_1",
                 "fashion_mnist_resnet_tuned", "fashion_mnist_lenet_tuned"},
    "lars": {"mlperf", "table5_lars_momentum", "table5_pure", "nado_table2_p_warmup_2",
             "fashion_mnist_resnet_tuned", "fashion_mnist_lenet_tuned"},
    "adamw": {"table5_eps1e-8", "table5_eps1e-6", "nado_table8_32k", "nado_table8_65k_32k",
              "nado_table8_65k", "pydocs_bert", "pydocs_bert_adam", "pydocs_bert_tuned",
              "fashion_mnist_resnet_tuned", "fashion_mnist_lenet_tuned"},
    "lamb": {"table5_pure", "table5_adam_eps1e-8", "table5_adam_eps1e-6", "you2019_32k",
             "you2019_65k_32k", "you2019_table4", "you2019_table5", "pydocs_bert", "pydocs_bert_google",
             "pydocs_bert_tuned", "fashion_mnist_resnet_tuned", "fashion_mnist_lenet_tuned"},
    "bert_adamw": {"bert_reference"},
    "sgd": {"pydocs_bert_tuned"},
    "adam_graft_sgd": {"pydocs_bert_tuned"},
    "sgd_corrected": {"pydocs_bert_tuned_rounded"},
}


def config_id(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.stem}"


def load(submission: str, name: str) -> configs.NamedConfig:
    return configs.load_config(submissions.load(submission), name)


def notes(submission: str, name: str) -> str:
    return json.loads((REPO / "submissions" / submission / "configs" / f"{name}.json").read_text())["notes"]


def test_expected_configs_exist() -> None:
    found: dict[str, set[str]] = {}
    for path in CONFIG_FILES:
        found.setdefault(path.parent.parent.name, set()).add(path.stem)
    assert found == EXPECTED


@pytest.mark.parametrize("path", CONFIG_FILES, ids=config_id)
def test_config_is_valid_for_its_workload(path: Path) -> None:
    import workloads  # lazily: the registry imports every workload module

    raw = json.loads(path.read_text())
    assert set(raw) == {"workload", "source", "hparams", "knobs", "notes"}, "fields of the config format"
    assert raw["source"].strip() and raw["notes"].strip()
    sub = submissions.load(path.parent.parent.name)
    named = configs.load_config(sub, path.stem)
    assert named.workload in workloads.workload_names(), (
        f"{config_id(path)} names workload {named.workload!r}, not registered (yet?)")
    workload = workloads.get_workload(named.workload, named.knobs)  # UserError: unknown / out of range
    assert all(workload.knobs[k] == v for k, v in named.knobs.items())
    phases = tuple(workload.phases)
    if isinstance(named.hparams, list):
        assert len(named.hparams) == len(phases), "exactly one hparams mapping per workload phase"
    # each phase's mapping through harness.hparams.validate_hparams, merged over DEFAULT_HPARAMS,
    # its learning rates scaled by a declared rule (harness/lr_scaling.py): what the harness gives
    per_phase, _ = plan.phase_hparams(named.hparams, sub, phases)
    # Every phase's optimizer and schedule build (warmup within the schedule's span, ...), and
    # next_phase accepts that phase's hparams: what the harness does before training.
    # On the workload's own model (its params as shapes and their types: a corrections file names
    # the model's layers), traced as the harness traces them, nothing allocated.
    params, types = workload_abstract(named.workload, named.knobs)
    ctx = spec.SubmissionContext(named.workload, types, phases)
    state = jax.eval_shape(lambda p: sub.init(p, per_phase[0], ctx), params)
    for k, hparams in enumerate(per_phase):
        ctx_k = dataclasses.replace(ctx, phase_index=k)
        assert sub.check_hparams is not None
        sub.check_hparams(hparams, ctx_k)  # what the harness calls first, with concrete values
        if k > 0:
            state = jax.eval_shape(lambda s, p, h=hparams, c=ctx_k: sub.next_phase(s, p, h, c), state, params)
        jax.eval_shape(lambda p, h=hparams, c=ctx_k: sub.init(p, h, c), params)


# --- spot checks against the papers' tables ------------------------------------------------------


def test_nado_table6_configuration_a() -> None:
    c = load("nesterov", "config_a")
    h = c.hparams
    assert c.workload == "imagenet_resnet50"
    assert h["momentum"] == pytest.approx(1 - 0.02397, rel=1e-12)
    assert (h["warmup_steps"], h["p_warmup"], h["p_decay"]) == (638, 2.497, 1.955)
    assert (h["learning_rate"], h["final_learning_rate"], h["weight_decay"]) == (7.05, 6e-6, 5.8e-5)
    assert h["init_learning_rate"] == 0.12  # App. C.4 search spaces, see the config's notes
    assert c.knobs == {"label_smoothing": 0.15, "bn_momentum": 0.94, "bn_epsilon": 4e-6, "gamma0": 0.4138}


def test_nado_table6_configuration_b_and_lars() -> None:
    b, lars = load("nesterov", "config_b"), load("lars", "mlperf")
    assert (b.hparams["warmup_steps"], b.hparams["p_warmup"], b.hparams["p_decay"]) == (706, 2.0, 2.0)
    assert b.hparams["init_learning_rate"] == 0.0
    assert b.knobs == {"label_smoothing": 0.15, "bn_momentum": 0.9, "bn_epsilon": 1e-5, "gamma0": 0.4138}
    h = lars.hparams
    assert h["momentum"] == pytest.approx(1 - 0.071, rel=1e-12)
    assert (h["learning_rate"], h["final_learning_rate"], h["weight_decay"]) == (29.0, 1e-4, 1e-4)
    assert (h["warmup_steps"], h["p_warmup"], h["p_decay"]) == (706, 1.0, 2.0)
    assert (h["trust_coefficient"], h["eps"], h["exclude_norm_and_bias"]) == (0.001, 0.0, True)
    assert lars.knobs == {"label_smoothing": 0.1, "bn_momentum": 0.9, "bn_epsilon": 1e-5, "gamma0": 0.0}


def test_lars_mlperf_eps_note_states_both_references() -> None:
    """eps 0.0 (the TF1 reference's --lars_epsilon default, kept) and the TF2 reference's effective
    1e-7 (`epsilon or backend_config.epsilon()` turns 0 into Keras' 1e-7): the note names both."""
    text = notes("lars", "mlperf")
    assert load("lars", "mlperf").hparams["eps"] == 0.0
    assert "--lars_epsilon flag defaults to 0.0" in text
    assert "epsilon or backend_config.epsilon()" in text and "1e-7" in text


def differences(a: configs.NamedConfig, b: configs.NamedConfig) -> dict[str, tuple]:
    """{key: (a's value, b's value)} of the hparams and knobs where two configs differ (a key one of
    them lacks counts with None)."""
    out = {}
    for x, y in ((a.hparams, b.hparams), (a.knobs, b.knobs)):
        for key in set(x) | set(y):
            if x.get(key) != y.get(key):
                out[key] = (x.get(key), y.get(key))
    return out


@pytest.mark.parametrize("name, change", [
    # Nado et al. Appendix B / Figure 4: "the same point as Base but with ..."
    ("nado_fig4_resnet_v1", {"resnet_version": (None, 1.0)}),          # "ResNet version 1.0 instead of 1.5"
    ("nado_fig4_bn_init", {"gamma0": (0.4138, 1.0)}),                  # "gamma_0 = 1.0 instead of 0.4138"
    ("nado_fig4_virtual_bn", {"virtual_batch_size": (None, 256)}),     # "virtual batch size of 256 instead of 64"
    ("nado_fig4_l2_variables", {"exclude_norm_and_bias": (None, False)}),  # "L2 ... applied to all variables"
])
def test_nado_fig4_ablations_change_one_thing_of_configuration_a(name: str, change: dict) -> None:
    """Each ablation is Configuration A with the one change Appendix B names; the keys config_a
    leaves to the defaults (None) are those defaults: ResNet v1.5, virtual batch 64, L2 on weights."""
    import workloads

    base, ablation = load("nesterov", "config_a"), load("nesterov", name)
    assert ablation.workload == base.workload == "imagenet_resnet50"
    assert differences(base, ablation) == change
    defaults = workloads.get_workload("imagenet_resnet50").knobs
    assert (defaults["resnet_version"], defaults["virtual_batch_size"]) == (1.5, 64)
    assert submissions.load("nesterov").defaults["exclude_norm_and_bias"] is True


def test_nado_fig4_bn_and_lr_tuning_is_configuration_b() -> None:
    """Figure 4's "BN & LR tuning" is Configuration B: A with p_decay, t_warmup, eta_0, rho and
    epsilon set to the LARS pipeline's values (Appendix B) -- and p_warmup 2, Table 6's B column,
    which the ablation's sentence does not list."""
    a, b, lars = load("nesterov", "config_a"), load("nesterov", "config_b"), load("lars", "mlperf")
    assert set(differences(a, b)) == {"p_decay", "warmup_steps", "init_learning_rate", "bn_momentum",
                                      "bn_epsilon", "p_warmup"}
    for key in ("p_decay", "warmup_steps", "init_learning_rate"):
        assert b.hparams[key] == lars.hparams[key], key
    for key in ("bn_momentum", "bn_epsilon"):
        assert b.knobs[key] == lars.knobs[key], key
    assert b.hparams["p_warmup"] == 2.0


@pytest.mark.parametrize("submission, name, base, p_warmup", [
    ("nesterov", "nado_table2_p_warmup_1", "config_b", 1.0),  # Table 2: 75.79% (vs 75.92% at p = 2)
    ("lars", "nado_table2_p_warmup_2", "mlperf", 2.0),        # Table 2: 75.69% (vs 75.97% at p = 1)
])
def test_nado_table2_sets_only_p_warmup(submission: str, name: str, base: str, p_warmup: float) -> None:
    """Table 2: "after setting p_warmup without retuning other hyperparameters"; each column's
    other cell is the published pipeline itself (Configuration B: p_warmup 2, LARS: 1)."""
    published, variant = load(submission, base), load(submission, name)
    assert differences(published, variant) == {"p_warmup": (3.0 - p_warmup, p_warmup)}


@pytest.mark.parametrize("submission, name, lr, wd", [
    ("nesterov", "table5", 1.173, 3.026e-4),
    ("lars", "table5_lars_momentum", 14.49, 1.708e-4),
    ("lars", "table5_pure", 14.18, 5.278e-5),
    ("adamw", "table5_eps1e-8", 0.004596, 0.6182),
    ("adamw", "table5_eps1e-6", 3.332e-3, 1.055),
    ("lamb", "table5_pure", 0.01134, 0.02657),
    ("lamb", "table5_adam_eps1e-8", 0.02569, 2.500),
    ("lamb", "table5_adam_eps1e-6", 0.03378, 4.197),
])
def test_nado_table5_best_values(submission: str, name: str, lr: float, wd: float) -> None:
    c = load(submission, name)
    assert c.workload == "imagenet_resnet50_cosine6000"
    assert (c.hparams["learning_rate"], c.hparams["weight_decay"]) == (lr, wd)
    assert (c.hparams["schedule"], c.hparams["warmup_steps"]) == ("cosine", 0)
    assert c.knobs["gamma0"] == 1.0 and c.knobs["label_smoothing"] == 0.1
    if "eps1e-" in name:
        assert c.hparams["eps"] == float(name.split("eps")[1])
    if submission in ("lars", "lamb"):
        assert c.hparams["exclude_norm_and_bias"] == ("pure" not in name)


@pytest.mark.parametrize("name, workload, phase1, phase2", [
    ("nado_table8_32k", "bert_large_32k", (5.9415e-4, 0.934271, 0.989295, 0.31466, 1.0, 3125),
     (2.8464e-4, 0.963567, 0.952647, 0.31466, 1.0, 781)),
    ("nado_table8_65k_32k", "bert_large_65k_32k", (1.3653e-3, 0.952378, 0.86471, 0.19891, 2.0, 2000),
     (2.8464e-4, 0.952647, 0.963567, 0.19891, 2.0, 781)),
    ("nado_table8_65k", "bert_large_65k", (1.3653e-3, 0.952378, 0.86471, 0.19891, 2.0, 2000),
     (6.1951e-5, 0.65322, 0.82451, 0.19891, 2.0, 390)),
])
def test_nado_table8_bert_adam(name: str, workload: str, phase1: tuple, phase2: tuple) -> None:
    c = load("adamw", name)
    assert c.workload == workload and c.knobs == {}
    for h, (lr, b1, b2, wd, p, warmup) in zip(c.hparams, (phase1, phase2), strict=True):
        assert (h["learning_rate"], h["b1"], h["b2"], h["weight_decay"]) == (lr, b1, b2, wd)
        assert (h["p_warmup"], h["p_decay"], h["warmup_steps"]) == (p, p, warmup)
        assert (h["eps"], h["bias_correction"], h["restart_per_phase"]) == (1e-11, True, True)
        assert (h["init_learning_rate"], h["final_learning_rate"]) == (0.0, 0.0)
        assert h["grad_clip_norm"] == 1.0  # the BERT code's clip_by_global_norm (inferred, see notes)
    assert "clip_by_global_norm" in notes("adamw", name) and "INFERRED" in notes("adamw", name)


@pytest.mark.parametrize("workload, steps", [
    ("bert_large_32k", (14063, 1562)),      # Nado et al. Table 8 train steps; You et al. Table 1
    ("bert_large_65k_32k", (7037, 1562)),   # 8,599 steps
    ("bert_large_65k", (7037, 781)),        # 7,818 steps (Nado et al. Table 4)
])
def test_bert_workload_phases_match_the_tables(workload: str, steps: tuple[int, int]) -> None:
    import workloads

    assert tuple(p.steps for p in workloads.get_workload(workload).phases) == steps


def test_nado_table8_32k_phase2_rewarms_over_its_own_steps() -> None:
    """Phase 2 of the 32k config: power-1 warmup 0 -> 2.8464e-4 over 781 steps, then decay to 0
    over the phase's 1,562 steps (d = T - w + 1 = 782, as mlperf_polynomial)."""
    c = load("adamw", "nado_table8_32k")
    phases = (spec.Phase(name="seq128", steps=14063, global_batch_size=32768, micro_batch_size=64, seq_len=128),
              spec.Phase(name="seq512", steps=1562, global_batch_size=32768, micro_batch_size=16, seq_len=512))
    ctx = spec.SubmissionContext("bert_large_32k", {}, phases, phase_index=1)
    s = schedules.from_hparams(c.hparams[1], ctx)
    lr = {t: float(s(jnp.asarray(t))) for t in (0, 390, 781, 1561, 1563)}
    assert lr[0] == 0.0
    assert lr[390] == pytest.approx(2.8464e-4 * 390 / 781, rel=1e-5)
    assert lr[781] == pytest.approx(2.8464e-4, rel=1e-6)
    assert lr[1561] == pytest.approx(2.8464e-4 * 2 / 782, rel=1e-5)  # the phase's last update
    assert lr[1563] == pytest.approx(0.0, abs=1e-12)


def test_you2019_lamb() -> None:
    c32, c64 = load("lamb", "you2019_32k"), load("lamb", "you2019_65k_32k")
    assert (c32.workload, c64.workload) == ("bert_large_32k", "bert_large_65k_32k")
    assert [h["learning_rate"] for h in c32.hparams] == [5e-3, 5e-3]  # Table 4: 5 / (2^0 x 10^3)
    assert [h["warmup_steps"] for h in c32.hparams] == [3125, 781]    # 0.2 x 15,625; Nado Table 8
    assert c64.hparams[0]["learning_rate"] == pytest.approx(5e-3 * math.sqrt(2), rel=1e-7)
    assert [h["warmup_steps"] for h in c64.hparams] == [2000, 781]
    for h in c32.hparams + c64.hparams:
        assert (h["bias_correction"], h["exclude_norm_and_bias"]) == (False, True)
        assert h["restart_per_phase"] is True
        assert (h["weight_decay"], h["eps"], h["b1"], h["b2"]) == (0.01, 1e-6, 0.9, 0.999)
        assert h["schedule"] == "bert_warmup_polynomial_decay"
        assert h["grad_clip_norm"] == 1.0  # the BERT/ALBERT code's clip_by_global_norm (inferred)
    for name in ("you2019_32k", "you2019_65k_32k"):
        assert "clip_by_global_norm" in notes("lamb", name) and "INFERRED" in notes("lamb", name)


def test_bert_reference_is_the_bert_default() -> None:
    c = load("bert_adamw", "bert_reference")
    h = c.hparams
    assert c.workload == "bert_large_32k" and "UNSCALED" in c.source
    assert (h["learning_rate"], h["warmup_steps"], h["weight_decay"]) == (1e-4, 10000, 0.01)
    assert (h["eps"], h["grad_clip_norm"], h["restart_per_phase"]) == (1e-6, 1.0, False)


# --- config files of the wrong JSON types: one line naming the file and the key ------------------

FMNIST = {"workload": "fashion_mnist_resnet", "source": "test", "notes": "test"}


@pytest.mark.parametrize("content, expected", [
    ({**FMNIST, "hparams": {}, "knobs": [1, 2]},
     "\"knobs\" must be a JSON object of knob names to numbers, got [1, 2]"),
    ({**FMNIST, "hparams": {}, "knobs": {"gamma0": "a"}}, "\"knobs\" key 'gamma0' is \"a\"; a knob is a number"),
    ({**FMNIST, "hparams": {}, "knobs": {"gamma0": True}}, "\"knobs\" key 'gamma0' is true"),
    ({**FMNIST, "hparams": "x"}, "\"hparams\" must be a JSON object of hyperparameters, or a list"),
    ({**FMNIST, "hparams": []}, "\"hparams\" must be a JSON object of hyperparameters, or a list"),
    ({**FMNIST, "hparams": [{}, 3]}, "\"hparams\" must be a JSON object of hyperparameters, or a list"),
    ({**FMNIST, "hparams": {"learning_rate": None}}, "\"hparams\" key 'learning_rate' is null"),
    ({**FMNIST, "hparams": {"learning_rate": [1.0, 0.5]}}, "\"hparams\" key 'learning_rate' is [1.0, 0.5]"),
    ({**FMNIST, "hparams": {"momentum": {"a": 1}}}, "\"hparams\" key 'momentum' is {\"a\": 1}"),
    ({**FMNIST, "hparams": [{}, {"momentum": None}]}, "\"hparams\"[1] key 'momentum' is null"),
    ({**FMNIST, "hparams": {}, "colour": "red"}, "unknown field(s) colour; the fields of a config are"),
    ({**FMNIST, "hparams": {}, "source": 3}, "\"source\" must be a string, got 3"),
    ({**FMNIST, "hparams": {"learning_rat": 0.1}}, "unknown hparam 'learning_rat' for submission nesterov"),
    ({**FMNIST, "hparams": {"learning_rate": "fast"}}, "hparam 'learning_rate' of submission nesterov must be a "
                                                       "number"),
    ({**FMNIST, "hparams": [{}, {"warmup_steps": 1.5}]}, "hparam 'warmup_steps' of submission nesterov must be "
                                                         "an integer"),
    ({**FMNIST, "hparams": {"learning_rate": math.nan}}, "must be finite, got nan"),
])
def test_bad_config_file_is_one_line_naming_file_and_key(tmp_path: Path, content: dict, expected: str) -> None:
    """Each was a TypeError traceback (knobs [1, 2]) or an error that did not name the file."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(spec.UserError) as err:
        configs.load_config(submissions.load("nesterov"), str(path))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"config {path}") and expected in message, message


def test_unreadable_config_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(spec.UserError, match=f"^cannot read config {path}: "):
        configs.load_config(submissions.load("nesterov"), str(path))


def test_bad_config_of_a_graft_child_names_its_file(tmp_path: Path) -> None:
    """A graft takes its children's configs (prefixed M./D.): a child's bad file is named too
    (the prefixing used to raise AttributeError on "hparams": "x")."""
    mine = tmp_path / "mine"
    (mine / "configs").mkdir(parents=True)
    (mine / "submission.py").write_text((REPO / "submissions" / "sgd" / "submission.py").read_text())
    bad = mine / "configs" / "bad.json"
    bad.write_text(json.dumps({**FMNIST, "hparams": "x"}))
    graft = submissions.load(f"{mine}#nesterov")
    with pytest.raises(spec.UserError, match=f"^config {bad}: \"hparams\" must be a JSON object"):
        configs.load_config(graft, "bad")
    bad.write_text(json.dumps({**FMNIST, "hparams": {"learning_rate": 0.1, "momentum": 0.5}}))
    assert configs.load_config(graft, "bad").hparams == {"M.learning_rate": 0.1, "M.momentum": 0.5}
