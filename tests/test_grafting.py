"""Grafting M#D (Agarwal et al. Algorithm 1): properties, numpy goldens, the CLI and bad input."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _submission_helpers import LAYOUT, context, flatten, nest, param_types, random_grads, random_params
from conftest import Result, file_digest, run_cli

from harness import spec
from harness import submission_loader as loader
from submissions.lib import grafting

STEPS = 4


@pytest.fixture(autouse=True)
def x64() -> Iterator[None]:
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def run(tx: optax.GradientTransformation, steps: int = STEPS, zero: tuple = ()) -> list[dict]:
    """Parameters after each step of tx on fixed random gradients (float64)."""
    params = nest({k: jnp.asarray(v) for k, v in random_params(0).items()})
    grads = random_grads(1, steps, zero)
    state, out = tx.init(params), []
    for g in grads:
        updates, state = tx.update(nest({k: jnp.asarray(v) for k, v in g.items()}), state, params)
        params = optax.apply_updates(params, updates)
        out.append({k: np.asarray(v) for k, v in flatten(params).items()})
    return out


def assert_same(a: list[dict], b: list[dict], rtol: float = 1e-10) -> None:
    for x, y in zip(a, b, strict=True):
        for k in x:
            np.testing.assert_allclose(x[k], y[k], rtol=rtol, atol=1e-12, err_msg=k)


def adam() -> optax.GradientTransformation:
    return optax.adam(1e-2)


def sgd_m(lr: optax.ScalarOrSchedule = 0.1) -> optax.GradientTransformation:
    return optax.sgd(lr, momentum=0.9)


def graft(m: optax.GradientTransformation, d: optax.GradientTransformation,
          partition: grafting.Partition = "layerwise") -> optax.GradientTransformation:
    return grafting.graft(m, d, partition, param_types())


@pytest.mark.parametrize("partition", ["global", "layerwise", "param_type"])
def test_a_graft_a_is_a(partition: str) -> None:
    assert_same(run(graft(adam(), adam(), partition)), run(adam()))


@pytest.mark.parametrize("partition", ["global", "layerwise", "param_type"])
def test_schedule_only_difference_gives_m(partition: str) -> None:
    """D = M with another (per-step scalar) learning-rate schedule: M#D == M."""
    m, d = sgd_m(0.1), sgd_m(lambda t: 0.003 * (t + 1) ** 2)
    assert_same(run(graft(m, d, partition)), run(m))


def test_associativity() -> None:
    """(M#A)#D == M#D (no zero steps here)."""
    m, a, d = adam(), optax.adagrad(0.5), sgd_m()
    assert_same(run(graft(graft(m, a), d)), run(graft(m, d)))


def test_not_commutative() -> None:
    a, b = run(graft(adam(), sgd_m())), run(graft(sgd_m(), adam()))
    assert not np.allclose(a[-1]["conv/kernel"], b[-1]["conv/kernel"])


def test_zero_d_step_gives_zero_update_and_nan_ratio() -> None:
    tx = graft(adam(), optax.sgd(0.1))  # plain SGD: a zero gradient is a zero D step
    params = nest({k: jnp.asarray(v) for k, v in random_params(0).items()})
    g = random_grads(1, 1, zero=((0, "dense/bias"),))[0]
    updates, state = tx.update(nest({k: jnp.asarray(v) for k, v in g.items()}), tx.init(params), params)
    assert np.all(np.asarray(updates["dense"]["bias"]) == 0)
    ratios = grafting.ratios_by_group(state)
    assert np.isnan(ratios["dense/bias"]) and np.isfinite(ratios["dense/kernel"])
    assert np.all(np.isfinite(np.asarray(updates["dense"]["kernel"])))


def test_partition_groups_and_ratio_order() -> None:
    params = nest({k: np.zeros(s) for k, (s, _) in LAYOUT.items()})
    types = param_types()
    assert grafting.leaf_groups(params, "global", types)[0] == ("all",)
    assert grafting.leaf_groups(params, "layerwise", types)[0] == tuple(sorted(LAYOUT))
    assert grafting.leaf_groups(params, "param_type", types)[0] == tuple(sorted(
        t.value for _, t in LAYOUT.values()))
    custom = lambda path, ptype: "weights" if spec.is_weight_like(ptype) else "rest"  # noqa: E731
    assert grafting.leaf_groups(params, custom, types)[0] == ("rest", "weights")
    state = graft(adam(), sgd_m(), custom).init(params)
    assert state.groups == ("rest", "weights") and state.ratios.shape == (2,)
    assert state.ratios.dtype == jnp.float32
    with pytest.raises(spec.UserError, match="unknown grafting partition 'per_row'"):
        grafting.leaf_groups(params, "per_row", types)


def test_custom_partition_equals_param_type_partition() -> None:
    by_type = lambda path, ptype: ptype.value  # noqa: E731
    assert_same(run(graft(adam(), sgd_m(), by_type)), run(graft(adam(), sgd_m(), "param_type")))


def test_diagnostics_names_and_values() -> None:
    tx = graft(adam(), sgd_m(), "param_type")
    params = nest({k: jnp.asarray(v) for k, v in random_params(0).items()})
    g = nest({k: jnp.asarray(v) for k, v in random_grads(1, 1)[0].items()})
    _, state = tx.update(g, tx.init(params), params)
    diag = grafting.diagnostics((optax.EmptyState(), state))  # found inside a larger state
    assert set(diag) == {f"ratio/{t.value}" for _, t in LAYOUT.values()}
    jitted = jax.jit(grafting.diagnostics)(state)
    assert float(jitted["ratio/bias"]) == pytest.approx(grafting.ratios_by_group(state)["bias"])


# --- golden: Adam#SGD vs an independent numpy implementation ------------------------------------


def np_adam_graft_sgd(partition: str, steps: int = STEPS, lr_scale: float = 1.0) -> list[dict]:
    """Algorithm 1 with Adam as M and heavy-ball SGD as D, each group's step c ||s_M|| / ||s_D|| s_D
    (c = lr_scale, Agarwal et al. App. A.1.1's global learning-rate scalar; 0 where s_D = 0)."""
    lr_m, b1, b2, eps, lr_d, mu = 1e-2, 0.9, 0.999, 1e-8, 0.1, 0.9
    w = random_params(0)
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(x) for k, x in w.items()}
    buf = {k: np.zeros_like(x) for k, x in w.items()}
    groups = {"global": lambda k: "all", "layerwise": lambda k: k,
              "param_type": lambda k: LAYOUT[k][1].value}[partition]
    out = []
    for t, g in enumerate(random_grads(1, steps), start=1):
        s_m, s_d = {}, {}
        for k in w:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            s_m[k] = -lr_m * (m[k] / (1 - b1 ** t)) / (np.sqrt(v[k] / (1 - b2 ** t)) + eps)
            buf[k] = mu * buf[k] + g[k]
            s_d[k] = -lr_d * buf[k]
        for grp in {groups(k) for k in w}:
            keys = [k for k in w if groups(k) == grp]
            nm = np.sqrt(sum(np.sum(s_m[k] ** 2) for k in keys))
            nd = np.sqrt(sum(np.sum(s_d[k] ** 2) for k in keys))
            for k in keys:
                w[k] = w[k] + (lr_scale * nm / nd * s_d[k] if nd > 0 else 0.0)
        out.append({k: x.copy() for k, x in w.items()})
    return out


@pytest.mark.parametrize("partition", ["global", "layerwise", "param_type"])
def test_golden_adam_graft_sgd(partition: str) -> None:
    assert_same(run(graft(adam(), sgd_m(0.1), partition)), np_adam_graft_sgd(partition), rtol=1e-6)


@pytest.mark.parametrize("lr_scale", [0.5, 3.0])
def test_golden_lr_scale(lr_scale: float) -> None:
    """The global learning-rate scalar c scales every group's grafted step (Agarwal et al. App. A.1.1)."""
    tx = grafting.graft(adam(), sgd_m(0.1), "layerwise", param_types(), lr_scale)
    assert_same(run(tx), np_adam_graft_sgd("layerwise", lr_scale=lr_scale), rtol=1e-6)


def test_lr_scale_one_is_bit_identical() -> None:
    """lr_scale 1.0, a Python float or a traced scalar (as the harness passes numeric hparams), gives
    the updates bit for bit of the graft without it; the recorded ratios never include it."""
    without = run(graft(adam(), sgd_m(0.1)))
    for one in (1.0, jnp.asarray(1.0)):
        got = run(grafting.graft(adam(), sgd_m(0.1), "layerwise", param_types(), one))
        for a, b in zip(got, without, strict=True):
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
    params = nest({k: jnp.asarray(v) for k, v in random_params(0).items()})
    g = nest({k: jnp.asarray(v) for k, v in random_grads(1, 1)[0].items()})
    ratios = [grafting.ratios_by_group(grafting.graft(adam(), sgd_m(0.1), "global", None, c).update(
        g, grafting.graft(adam(), sgd_m(0.1), "global", None, c).init(params), params)[1]) for c in (1.0, 4.0)]
    assert ratios[0] == ratios[1]


# --- submissions: the built-ins, the M#D loader, sgd_corrected ---------------------------------


def run_submission(sub: loader.Submission, hparams: dict, steps: int = STEPS) -> list[dict]:
    ctx = context(100)
    params = nest({k: jnp.asarray(v) for k, v in random_params(0).items()})
    state, out = sub.init(params, hparams, ctx), []
    for g in random_grads(1, steps):
        updates, state = sub.update(nest({k: jnp.asarray(v) for k, v in g.items()}), state, params,
                                    hparams, ctx)
        params = optax.apply_updates(params, updates)
        out.append({k: np.asarray(v) for k, v in flatten(params).items()})
    return out


def test_loader_grafts_by_name_with_namespaced_hparams() -> None:
    sub = loader.load("adamw#sgd")
    assert sub.name == "adamw#sgd" and sub.diagnostics is not None
    assert sub.defaults["partition"] == "layerwise"
    assert sub.defaults["M.learning_rate"] == loader.load("adamw").defaults["learning_rate"]
    assert sub.defaults["D.momentum"] == 0.0
    assert set(sub.search_space) == {f"D.{k}" for k in loader.load("sgd").search_space} | {"lr_scale"}
    assert (sub.search_space["lr_scale"]["min"], sub.search_space["lr_scale"]["max"],
            sub.search_space["lr_scale"]["scaling"]) == (0.1, 10.0, "log")  # Agarwal et al. App. A.1.1
    builtin = loader.load("adam_graft_sgd")
    hp = {**builtin.defaults}
    assert_same(run_submission(sub, {**sub.defaults, "D.momentum": 0.9}), run_submission(builtin, hp))


def test_loader_graft_of_a_graft_nests_prefixes() -> None:
    sub = loader.load("adamw#sgd#adagrad")
    assert sub.name == "adamw#sgd#adagrad"
    assert "M.M.learning_rate" in sub.defaults and "M.partition" in sub.defaults
    assert "D.initial_accumulator_value" in sub.defaults


@pytest.mark.parametrize("name", ["adam_graft_sgd", "lamb_graft_sgd", "sgd_graft_adagrad", "adamw#sgd"])
def test_graft_lr_scale_hparam(name: str) -> None:
    """Every graft has lr_scale (default 1.0, range [0, inf)); the first update at lr_scale 2.5 is
    2.5 times the default's."""
    from submissions.lib import valid_ranges

    sub, ctx = loader.load(name), context(100)
    assert sub.defaults["lr_scale"] == 1.0
    params = nest({k: jnp.asarray(v) for k, v in random_params(0).items()})
    g = nest({k: jnp.asarray(v) for k, v in random_grads(1, 1)[0].items()})
    step = {c: sub.update(g, sub.init(params, {**sub.defaults, "lr_scale": c}, ctx), params,
                          {**sub.defaults, "lr_scale": c}, ctx)[0] for c in (1.0, 2.5)}
    for a, b in zip(jax.tree.leaves(step[2.5]), jax.tree.leaves(step[1.0]), strict=True):
        np.testing.assert_allclose(a, 2.5 * b, rtol=1e-12, atol=0)
    assert sub.check_hparams is not None
    outside = r"^submission \S+#\S+: hparam lr_scale = -1.0 is outside \[0, inf\)"
    with pytest.raises(valid_ranges.OutOfRange, match=outside):
        sub.check_hparams({**sub.defaults, "lr_scale": -1.0}, ctx)


def test_builtin_grafted_submissions_run() -> None:
    for name in ("adam_graft_sgd", "lamb_graft_sgd", "sgd_graft_adagrad", "sgd", "adagrad"):
        sub = loader.load(name)
        out = run_submission(sub, dict(sub.defaults), steps=2)
        assert all(np.all(np.isfinite(v)) for v in out[-1].values()), name


def write_corrections(path: str, multipliers: dict, partition: str = "layerwise") -> str:
    with open(path, "w") as f:
        json.dump({"multipliers": multipliers, "partition": partition, "provenance": {}}, f)
    return path


def test_golden_sgd_corrected(tmp_path: str) -> None:
    """w <- w - c_rho * lr * v (heavy ball), constant lr: against numpy."""
    c = {k: 10.0 ** (i - 2) for i, k in enumerate(sorted(LAYOUT))}
    path = write_corrections(os.path.join(tmp_path, "c.json"), c)
    sub = loader.load("sgd_corrected")
    hp = {**sub.defaults, "corrections": path, "schedule": "linear", "warmup_steps": 0,
          "learning_rate": 0.1, "final_learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.0}
    w = random_params(0)
    buf = {k: np.zeros_like(v) for k, v in w.items()}
    expected = []
    for g in random_grads(1, STEPS):
        for k in w:
            buf[k] = 0.9 * buf[k] + g[k]
            w[k] = w[k] - c[k] * 0.1 * buf[k]
        expected.append({k: v.copy() for k, v in w.items()})
    assert_same(run_submission(sub, hp), expected, rtol=1e-6)


@pytest.mark.parametrize("multipliers, message", [
    ({"conv/kernel": 1.0}, "no multiplier for group(s) bn/bias"),
    ({**{k: 1.0 for k in LAYOUT}, "head/kernel": 2.0}, "unknown group(s) head/kernel"),
])
def test_sgd_corrected_group_mismatch(tmp_path: str, multipliers: dict, message: str) -> None:
    path = write_corrections(os.path.join(tmp_path, "c.json"), multipliers)
    sub = loader.load("sgd_corrected")
    with pytest.raises(spec.UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_submission(sub, {**sub.defaults, "corrections": path}, steps=1)


# --- end to end: diagnostics in the database, discover-schedule, the plot, bad input ------------


@pytest.fixture(scope="module")
def grafted_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("graft") / "results.db")
    proc = run_cli("harness", "run", "--workload=fashion_mnist_lenet", "--submission=adamw#nesterov",
                   "--seeds=0", "--budget=4", "--diagnostics_every=2", f"--results={path}",
                   '--hparams={"partition": "param_type", "D.momentum": 0.9}',
                   f"--run_ids_file={path}.ids")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "adamw#nesterov seed 0: completed" in proc.stdout
    with open(f"{path}.ids") as f:  # what scripts read instead of querying the database
        assert f.read() == "1\t0\tcompleted\n"
    return path


@pytest.mark.slow
def test_diagnostics_recorded_every_k_steps(grafted_db: str) -> None:
    conn = sqlite3.connect(grafted_db)
    rows = conn.execute("SELECT step, name, value FROM diagnostics ORDER BY step, name").fetchall()
    assert sorted({r[0] for r in rows}) == [2, 4]
    assert {r[1] for r in rows} == {"ratio/bias", "ratio/weight", "ratio/conv_weight"}
    assert all(r[2] is not None and r[2] > 0 for r in rows)
    (sub, hp) = conn.execute("SELECT submission, hparams FROM runs").fetchone()
    assert sub == "adamw#nesterov" and json.loads(hp)["partition"] == "param_type"


@pytest.mark.slow
@pytest.mark.cli
def test_discover_schedule_and_plot(grafted_db: str, tmp_path: str) -> None:
    out = os.path.join(tmp_path, "c.json")
    proc = run_cli("harness", "discover-schedule", "--run=1", "--first_steps=4", "--round",
                   f"--results={grafted_db}", f"--out={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out) as f:
        result = json.load(f)
    conn = sqlite3.connect(grafted_db)
    for group, c in result["multipliers"].items():
        values = [v for (v,) in conn.execute("SELECT value FROM diagnostics WHERE name = ?",
                                             (f"ratio/{group}",))]
        median = float(np.median(values))
        assert result["provenance"]["medians"][group] == pytest.approx(median)
        assert c == 10.0 ** np.floor(np.log10(median))
    assert result["partition"] == "param_type"
    assert result["provenance"]["run_id"] == 1 and result["provenance"]["first_steps"] == 4
    png = os.path.join(tmp_path, "d.png")
    plot = run_cli("scoring", "diagnostics", "--run=1", f"--results={grafted_db}", f"--out={png}")
    assert plot.returncode == 0, plot.stderr[-2000:]
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


BAD = {
    "unknown child": (["--submission=adamw#sgdd"], "unknown submission 'sgdd'"),
    "empty child": (["--submission=adamw#"], "malformed grafted submission"),
    "unknown namespaced hparam": (["--submission=adamw#sgd", '--hparams={"D.momentumm": 0.9}'],
                                  "unknown hparam 'D.momentumm' for submission adamw#sgd"),
    "un-namespaced hparam": (["--submission=adamw#sgd", '--hparams={"learning_rate": 0.1}'],
                             "unknown hparam 'learning_rate'"),
    "unknown partition": (["--submission=adamw#sgd", '--hparams={"partition": "rows"}'],
                          "unknown grafting partition 'rows'"),
    "sgd_corrected without file": (["--submission=sgd_corrected"], "hparam corrections must be"),
    "config of no child": (["--submission=adamw#sgd", "--config=mlperf"],
                           "unknown config 'mlperf' for submission adamw#sgd"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_grafting_input(name: str, results_db: str, main_in_process: Callable[..., Result]) -> None:
    overrides, expected = BAD[name]
    args = {"--workload": "fashion_mnist_lenet", "--seeds": "0", "--budget": "1",
            "--results": results_db}
    args.update(o.split("=", 1) for o in overrides)
    before = file_digest(results_db)
    result = main_in_process("harness", "run", *(f"{k}={v}" for k, v in args.items()))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert file_digest(results_db) == before


def test_discover_schedule_bad_run(results_db: str, main_in_process: Callable[..., Result]) -> None:
    result = main_in_process("scoring", "discover-schedule", "--run=99", "--first_steps=4",
                             f"--results={results_db}")
    assert result.returncode == 2 and result.stderr.startswith("error: no run 99")


STUDIES_DB = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "studies", "studies.db")
GRAFT_STUDY = "issue15/pydocs_bert/adam_graft_sgd"


def test_discover_schedule_of_a_study_reads_its_selected_trials_run(
        main_in_process: Callable[..., Result]) -> None:
    """--study=NAME: the medians of the run of the study's selected trial (the published studies'
    database; the trial and its run looked up here with SQL, the medians recomputed with numpy)."""
    conn = sqlite3.connect(f"file:{STUDIES_DB}?mode=ro", uri=True)
    found = conn.execute("SELECT t.run_id FROM studies s JOIN study_trials t ON t.study_id = s.study_id "
                         "AND t.trial = s.selected_trial WHERE s.name = ?", (GRAFT_STUDY,)).fetchone()
    if found is None:
        pytest.skip(f"{GRAFT_STUDY} has no selected trial in {STUDIES_DB}")
    result = main_in_process("scoring", "discover-schedule", f"--study={GRAFT_STUDY}", "--first_steps=50",
                             f"--results={STUDIES_DB}")
    assert result.returncode == 0, result.stderr
    discovered = json.loads(result.stdout)
    assert discovered["provenance"]["run_id"] == found[0]
    rows = conn.execute("SELECT name, value FROM diagnostics WHERE run_id = ? AND step <= 50 AND name LIKE "
                        "'ratio/%'", found).fetchall()
    by_group: dict[str, list[float]] = {}
    for name, value in rows:
        by_group.setdefault(name.removeprefix("ratio/"), []).append(value)
    assert discovered["multipliers"] == pytest.approx({g: float(np.median(v)) for g, v in by_group.items()})


@pytest.mark.parametrize("args,expected", [
    (["--run=1", f"--study={GRAFT_STUDY}"], "one of --run=RUN_ID or --study=NAME"),
    ([], "one of --run=RUN_ID or --study=NAME"),
    (["--study=no/such/study"], "no study 'no/such/study'"),
])
def test_discover_schedule_bad_run_or_study(args: list[str], expected: str,
                                           main_in_process: Callable[..., Result]) -> None:
    result = main_in_process("scoring", "discover-schedule", *args, "--first_steps=50",
                             f"--results={STUDIES_DB}")
    assert result.returncode == 2 and result.stderr.startswith("error: ") and expected in result.stderr, \
        result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_discover_schedule_needs_recorded_ratios(results_db: str,
                                                 main_in_process: Callable[..., Result]) -> None:
    result = main_in_process("harness", "discover-schedule", "--run=1", "--first_steps=4",
                             f"--results={results_db}")
    assert result.returncode == 2 and "has no recorded grafting ratios" in result.stderr


def test_children_configs_apply_to_a_graft() -> None:
    """--config of a graft: M's named config prefixed M. (adamw's pydocs_bert), D has none."""
    from harness import configs

    graft = loader.load("adam_graft_sgd")
    named = configs.load_config(graft, "pydocs_bert")
    adamw = configs.load_config(loader.load("adamw"), "pydocs_bert")
    assert named.workload == "pydocs_bert" and named.source.startswith("M: ")
    assert named.hparams == {f"M.{k}": v for k, v in adamw.hparams.items()}
    per_phase = configs.load_config(loader.load("adamw#sgd"), "nado_table8_32k")
    assert isinstance(per_phase.hparams, list) and len(per_phase.hparams) == 2
    assert all(k.startswith("M.") for h in per_phase.hparams for k in h)


@pytest.mark.parametrize("name", ["adam_graft_sgd", "lamb_graft_sgd", "sgd_graft_adagrad"])
def test_builtin_grafts_search_lr_scale_as_an_ad_hoc_graft_does(name: str) -> None:
    """The built-in grafts' search_space.json files and an ad hoc M#D search the same global scalar."""
    builtin = loader.load(name)
    assert builtin.children is not None and builtin.search_space is not None
    ad_hoc = loader.load("#".join(child.name for child in builtin.children))
    assert ad_hoc.search_space is not None
    assert builtin.search_space["lr_scale"] == ad_hoc.search_space["lr_scale"]
