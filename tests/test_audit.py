"""The submission contract enforced by the audit hook (harness/audit.py), against real adversarial
submissions (tests/data/submissions/): refused from a submission's frames, allowed from the
harness's, swallowed refusals raised anyway; sys.exit and Ctrl-C in submission code."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import pytest
from _submission_helpers import context, nest, random_params
from conftest import BAD_SUBMISSIONS, file_digest, run_cli

from harness import audit
from harness import submission_loader as loader
from harness.errors import UserError
from harness.submission_checks import check_submission
from workloads.data import fashion_mnist

LABELS = os.path.join(fashion_mnist.DEFAULT_DIR, "t10k-labels-idx1-ubyte.gz")
PARAMS = {"w": jnp.zeros((3,)), "b": jnp.zeros(())}


def adversary(name: str) -> str:
    return os.path.join(BAD_SUBMISSIONS, f"{name}.py")


def refusal(call: Callable[[], Any]) -> str:
    """The one-line message of the ContractViolation `call` raises."""
    with pytest.raises(audit.ContractViolation) as err:
        call()
    message = str(err.value)
    assert "\n" not in message and isinstance(err.value, UserError)
    return message


def trace_update(sub: loader.Submission) -> Any:
    """The submission's update traced and lowered as the train step is (a fresh function: no cache)."""
    return jax.jit(lambda g, s, p: sub.update(g, s, p, dict(sub.defaults), None)).lower(PARAMS, (), PARAMS)


def guarded(sub: loader.Submission, call: Callable[[], Any]) -> Any:
    with loader.guard(sub):
        return call()


# --- refused from a submission's frames ----------------------------------------------------------


def test_reading_the_test_labels_at_import_is_refused() -> None:
    message = refusal(lambda: loader.load(adversary("reads_test_labels")))
    assert f"opened {LABELS}" in message and "reads_test_labels.py line 9" in message
    assert "must not read or touch the datasets" in message
    assert not [m for m in sys.modules if m.endswith("reads_test_labels")]  # no half-imported module


def test_reading_in_a_module_getattr_called_by_the_loader_is_refused() -> None:
    """The loader's checks after the import (getattr of the optional hooks) run under the guard."""
    message = refusal(lambda: loader.load(adversary("reads_labels_in_getattr")))
    assert f"opened {LABELS} (reads_labels_in_getattr.py line 18)" in message


def test_reading_inside_update_while_tracing_is_refused() -> None:
    sub = loader.load(adversary("reads_labels_in_update"))  # nothing read at import
    trace_update(sub)  # outside a guard the hook does nothing: the adversary works
    with pytest.raises(audit.ContractViolation) as err, loader.guard(sub):  # raised where it happened
        trace_update(sub)
    assert f"submission reads_labels_in_update opened {LABELS}" in str(err.value)
    assert "reads_labels_in_update.py line 15" in str(err.value)


def test_a_swallowed_refusal_is_raised_when_the_guard_ends() -> None:
    """The adversary catches the refusal with a bare except and goes on; the guard raises it."""
    message = refusal(lambda: loader.load(adversary("swallows_refusal")))
    assert f"opened {LABELS}" in message
    assert message.endswith("the submission went on (it caught the refusal, or it ran in a thread)")


def test_reading_the_results_database_is_refused(results_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["harness", "run", f"--results={results_db}"])
    sub = loader.load(adversary("reads_results_db"))  # not protected: it reads the recorded evals
    assert len(sub.init.__globals__["EVALS"]) == 1
    with audit.protecting(None, results_db):
        message = refusal(lambda: loader.load(adversary("reads_results_db")))
    assert f"opened {results_db}" in message  # the adversary's read-only URI names the same file


def test_the_targets_file_is_protected(monkeypatch: pytest.MonkeyPatch) -> None:
    from workloads import targets

    monkeypatch.setenv("AUDIT_PROBE_PATH", targets.TARGETS_FILE)
    assert f"opened {targets.TARGETS_FILE}" in refusal(lambda: loader.load(adversary("opens_given_path")))


def test_a_symbolic_link_to_the_labels_is_seen_through(tmp_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    link = os.path.join(tmp_path, "labels.gz")
    os.symlink(LABELS, link)
    monkeypatch.setenv("AUDIT_PROBE_PATH", link)
    assert f"opened {link}" in refusal(lambda: loader.load(adversary("opens_given_path")))


def test_a_data_dir_declared_by_the_caller_is_protected(tmp_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.path.join(tmp_path, "data")
    os.makedirs(data)
    with open(os.path.join(data, "labels.bin"), "wb") as f:
        f.write(b"\x01\x02")
    monkeypatch.setenv("AUDIT_PROBE_PATH", os.path.join(data, "labels.bin"))
    loader.load(adversary("opens_given_path"))  # not a dataset location: allowed
    with audit.protecting(data):
        refusal(lambda: loader.load(adversary("opens_given_path")))
    monkeypatch.setenv("FASHION_MNIST_DIR", data)  # a dataset's environment variable names it
    refusal(lambda: loader.load(adversary("opens_given_path")))


def test_the_harness_loader_called_by_a_submission_is_refused() -> None:
    """The harness's frames open the files, but the submission's init is on the stack."""
    sub = loader.load(adversary("loads_data_through_harness"))
    message = refusal(lambda: guarded(sub, lambda: sub.init(PARAMS, dict(sub.defaults), None)))
    assert "submission loads_data_through_harness opened" in message
    assert "loads_data_through_harness.py line 11" in message
    # check_submission reports the refusal as such, not as "init raised ..."
    message = refusal(lambda: guarded(sub, lambda: check_submission(sub.name, sub.init, sub.update, PARAMS,
                                                                     dict(sub.defaults), None)))
    assert message.startswith("submission loads_data_through_harness opened")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the refused thread
def test_a_thread_of_the_submission_is_checked() -> None:
    """The refusal is raised in the submission's thread; the guard raises it in the harness's."""
    sub = loader.load(adversary("reads_in_a_thread"))
    message = refusal(lambda: guarded(sub, lambda: sub.init(PARAMS, dict(sub.defaults), None)))
    assert f"opened {LABELS} (reads_in_a_thread.py line 13)" in message and "ran in a thread" in message
    assert sub.init.__globals__["STOLEN"] == []


def test_starting_a_process_is_refused() -> None:
    message = refusal(lambda: loader.load(adversary("cats_test_labels")))
    assert f"started a process (cat {LABELS})" in message and "must not start processes" in message


# --- allowed ------------------------------------------------------------------------------------


def test_harness_frames_may_open_protected_files_inside_a_guard(results_db: str) -> None:
    """The data loader, the results store: no submission frame on the stack, so not refused."""
    sub = loader.load(adversary("loads_data_through_harness"))
    with audit.protecting(results_db), loader.guard(sub):
        assert fashion_mnist.load().test_y.shape == (10000,)
        conn = sqlite3.connect(results_db)
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] >= 1
        conn.close()


def test_a_submission_reads_its_own_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_PROBE_PATH", adversary("no_update"))
    sub = loader.load(adversary("opens_given_path"))
    assert sub.init.__globals__["CONTENTS"].startswith(b'"""A malformed submission')


def test_a_protected_directory_above_the_submission_leaves_it_its_own(tmp_path: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """--data_dir=~/work holding ~/work/subs/mine.py and ~/work/data: mine.py reads its own files only."""
    subs, data = os.path.join(tmp_path, "subs"), os.path.join(tmp_path, "data")
    os.makedirs(subs)
    os.makedirs(data)
    mine = shutil.copy(adversary("opens_given_path"), subs)
    for name in ("notes.txt", "labels.bin"):
        with open(os.path.join(subs if name == "notes.txt" else data, name), "wb") as f:
            f.write(b"x")
    with audit.protecting(str(tmp_path)):
        monkeypatch.setenv("AUDIT_PROBE_PATH", os.path.join(subs, "notes.txt"))
        assert loader.load(mine).init.__globals__["CONTENTS"] == b"x"
        monkeypatch.setenv("AUDIT_PROBE_PATH", os.path.join(data, "labels.bin"))
        assert f"opened {data}/labels.bin" in refusal(lambda: loader.load(mine))


@pytest.mark.parametrize("name", [n for n in loader.builtin_names() if n != "sgd_corrected"])  # needs a file
def test_builtin_submissions_import_and_trace_under_the_guard(name: str) -> None:
    sub = loader.load(name)
    params = jax.tree.map(jnp.asarray, nest(random_params(0)))
    with loader.guard(sub):
        hparams = dict(sub.defaults)
        state = sub.init(params, hparams, context(12))
        jax.jit(lambda g, s, p: sub.update(g, s, p, hparams, context(12))).lower(params, state, params)


def test_the_harness_plans_and_compiles_under_a_guard(results_db: str) -> None:
    """What the runner would guard (the plan's checks, the state's shapes, the compiled step) opens
    nothing protected from the submission's frames: a built-in runs under the guard unrefused."""
    from harness import plan

    with audit.protecting(fashion_mnist.DEFAULT_DIR, results_db):
        p = plan.build("fashion_mnist_lenet", "nesterov", budget=2)
        with loader.guard(p.submission):
            p.with_hparams({"learning_rate": 0.5})
            p.abstract_state()
            p.compile_train_step(0)


# --- sys.exit and Ctrl-C in submission code ----------------------------------------------------


def test_sys_exit_at_import_is_a_user_error() -> None:
    with pytest.raises(UserError) as err:
        loader.load(adversary("exits_at_import"))
    assert str(err.value) == (f"submission {adversary('exits_at_import')} called sys.exit(0) at import; a "
                              "submission must not exit the process: raise an exception to report a failure")


@pytest.mark.cli
def test_process_sys_exit_at_import_exits_2(results_db: str) -> None:
    """As a CI script sees it: exit 2 and the one line, not exit 0 and silence."""
    before = file_digest(results_db)
    proc = run_cli("harness", "run", "--workload=fashion_mnist_resnet", "--budget=1", "--progress=false",
                   f"--submission={adversary('exits_at_import')}", f"--results={results_db}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"error: submission {adversary('exits_at_import')} called sys.exit(0) at import")
    assert file_digest(results_db) == before


def test_keyboard_interrupt_at_import_propagates() -> None:
    """Ctrl-C during the import is the user's: the harness handles it, not as a submission error."""
    with pytest.raises(KeyboardInterrupt):
        loader.load(adversary("interrupted_at_import"))
    assert not [m for m in sys.modules if m.endswith("interrupted_at_import")]


@pytest.mark.parametrize("name, call, code", [
    ("exits_in_init", "init(params, hparams, ctx)", 0),
    ("exits_in_update", "update(grads, state, params, hparams, ctx)", 3)])
def test_sys_exit_in_init_or_update_is_a_user_error(name: str, call: str, code: int) -> None:
    sub = loader.load(adversary(name))
    with pytest.raises(UserError) as err:
        check_submission(sub.name, sub.init, sub.update, PARAMS, dict(sub.defaults), None)
    assert str(err.value).startswith(f"submission {name} called sys.exit({code}) in {call}; a submission must")


# --- the hook's scope and cost -------------------------------------------------------------------


def test_the_hook_is_idle_outside_guards() -> None:
    sub = loader.load(adversary("reads_labels_in_update"))
    refusal(lambda: guarded(sub, lambda: trace_update(sub)))
    trace_update(sub)  # the guard ended: nothing is checked any more
    assert not audit._state.guards


def test_guard_costs_little() -> None:
    """Importing a built-in and tracing its update inside a guard: within noise of outside
    (measured: 12 ms both ways here; the hook adds a path check per file opened)."""
    params = jax.tree.map(jnp.asarray, nest(random_params(0)))

    def import_and_trace() -> float:
        start = time.perf_counter()
        for module in [m for m in sys.modules if m.endswith("submissions_nesterov_submission")]:
            del sys.modules[module]  # imported anew each time
        sub = loader.load("nesterov")
        hparams = dict(sub.defaults)
        state = sub.init(params, hparams, context(12))
        jax.jit(lambda g, s, p: sub.update(g, s, p, hparams, context(12))).lower(params, state, params)
        return time.perf_counter() - start

    def guarded() -> float:
        with audit.guard("nesterov", [loader.SUBMISSIONS_DIR]):
            return import_and_trace()

    import_and_trace()
    outside = min(import_and_trace() for _ in range(3))
    inside = min(guarded() for _ in range(3))
    assert inside < 1.3 * outside + 0.05, (inside, outside)


def test_open_under_a_guard_costs_microseconds(tmp_path: str) -> None:
    """Per open of an unprotected file: the hook's path check (abspath, realpath)."""
    path = os.path.join(tmp_path, "f")
    open(path, "wb").close()

    def opens() -> float:
        start = time.perf_counter()
        for _ in range(2000):
            os.close(os.open(path, os.O_RDONLY))
        return (time.perf_counter() - start) / 2000

    outside = min(opens() for _ in range(3))
    with audit.guard("probe", [BAD_SUBMISSIONS]):
        inside = min(opens() for _ in range(3))
    assert inside - outside < 50e-6, (inside, outside)
