"""Bad input: each case is a one-line error, exit code 2, and an unchanged results database.

The cases run the entry point in-process (harness.cli.invoke: the real flag parsing and error
handling); a few run it as a real process, for the exit code and traceback-free output."""

from __future__ import annotations

import gzip
import os
import random
import shutil
from collections.abc import Callable

import pytest
from conftest import BAD_SUBMISSIONS, Result, file_digest, run_cli

FASHION = "/usr/share/datasets/fashion-mnist"


def corrupt_data_dir(tmp_path: str, kind: str) -> str:
    """A copy of Fashion-MNIST with one corrupted file."""
    d = os.path.join(tmp_path, f"fmnist_{kind}")
    os.makedirs(d)
    for name in os.listdir(FASHION):
        shutil.copy(os.path.join(FASHION, name), d)
    labels = os.path.join(d, "t10k-labels-idx1-ubyte.gz")
    with gzip.open(labels, "rb") as f:
        raw = bytearray(f.read())
    if kind == "magic":
        raw[2] = 0x42
    elif kind == "size":
        raw = raw[:-7]
    elif kind == "shuffled":  # a well-formed IDX file (format checks pass) with other contents
        body = list(raw[8:])
        random.Random(0).shuffle(body)
        raw[8:] = bytes(body)
    with gzip.open(labels, "wb") as f:
        f.write(bytes(raw))
    return d


CASES = {
    "missing submission path": (["--submission=tests/data/submissions/nope.py"], "does not exist"),
    "unknown built-in submission": (["--submission=nesterovv"], "unknown submission"),
    "module without update": ([f"--submission={BAD_SUBMISSIONS}/no_update.py"], "does not define update"),
    "update of another structure": ([f"--submission={BAD_SUBMISSIONS}/wrong_structure.py"],
                                    "tree structure"),
    "update of another shape": ([f"--submission={BAD_SUBMISSIONS}/wrong_shape.py"], "shape"),
    "update of another dtype": ([f"--submission={BAD_SUBMISSIONS}/wrong_dtype.py"], "float16"),
    "unparsable hparams": (["--hparams={\"learning_rate\": 0.1,}"], "cannot parse"),
    "hparams file missing": (["--hparams=nowhere.json"], "neither a JSON object nor an existing file"),
    "unknown hparam": (["--hparams={\"learning_rat\": 0.1}"], "unknown hparam 'learning_rat'"),
    "hparam of wrong type": (["--hparams={\"learning_rate\": \"fast\"}"], "must be a number"),
    "unknown knob": (["--knobs={\"gamma\": 0.5}"], "unknown knob 'gamma'"),
    "knob out of range": (["--knobs={\"gamma0\": 3}"], "outside its allowed range"),
    "unknown workload": (["--workload=imagenet_resnet"], "unknown workload 'imagenet_resnet'; known workloads: "),
    "malformed seed range": (["--seeds=4-0"], "malformed seed range"),
    "malformed seeds": (["--seeds=a-b"], "malformed seed range"),
    "seed range of 10^10 seeds": (["--seeds=0-9999999999"], "seed 9999999999 is out of range"),
    "seed of 20 digits": (["--seeds=99999999999999999999"], "seed 99999999999999999999 is out of range"),
    "seed 2^32 (the key of seed 0)": (["--seeds=4294967296"], "seeds are ints in [0, 2147483647]"),
    "100,001 seeds without --many_seeds": (["--seeds=0-100000"], "--seeds=0-100000 is 100,001 seeds (more "
                                           "than 1,000); pass --many_seeds to run them"),
    "overlapping seed ranges": (["--seeds=0-5,3-8"], "repeats a seed (3)"),
    "budget beyond int32": (["--budget=3000000000"], "at most 2147483647"),
    "dataset missing": (["--data_dir=/nonexistent/fmnist"], "apt-get install dataset-fashion-mnist"),
    "results not writable": (["--results=/nonexistent/dir/results.db"], "cannot create results database"),
    "zero budget": (["--budget=0"], "--budget must be a positive"),
    "budget not an integer": (["--budget=ten"], "flag --budget=ten"),
    "submission reads the labels through the harness": (
        [f"--submission={BAD_SUBMISSIONS}/loads_data_through_harness.py"],
        "submission loads_data_through_harness opened /usr/share/datasets/fashion-mnist/"),
    "unknown flag": (["--learning_rate=0.1"], "Unknown command line flag 'learning_rate'"),
    "hparams list of the wrong length": (["--hparams=[{}, {}]"], "has 2 mapping(s) but the workload has 1 phase"),
    "hparams list of non-objects": (["--hparams=[1, 2]"], "must be a list of JSON objects"),
    "unknown config": (["--config=nope"], "unknown config 'nope' for submission nesterov"),
    "config for another workload": (["--config=config_a"], "is for workload imagenet_resnet50"),
    "diagnostics_every negative": (["--diagnostics_every=-1"], "--diagnostics_every must be >= 0"),
    # hparams outside the submission's valid ranges (submissions/lib/valid_ranges.py)
    "learning rate below 0": (["--hparams={\"learning_rate\": -0.5}"],
                              "submission nesterov: hparam learning_rate = -0.5 is outside [0, inf)"),
    "momentum of 7": (["--hparams={\"momentum\": 7.0}"],
                      "submission nesterov: hparam momentum = 7.0 is outside [0, 1)"),
    "graft's D.momentum of 1.5": (["--submission=adamw#nesterov", "--hparams={\"D.momentum\": 1.5}"],
                                  "submission adamw#nesterov: hparam D.momentum = 1.5 is outside [0, 1)"),
    "graft's M.eps of 0": (["--submission=adamw#nesterov", "--hparams={\"M.eps\": 0}"],
                           "submission adamw#nesterov: hparam M.eps = 0.0 is outside (0, inf)"),
    # config files and defaults of the wrong JSON or Python types
    "config with a list of knobs": ([f"--config={BAD_SUBMISSIONS}/bad_configs/knobs_list.json"],
                                    "knobs_list.json: \"knobs\" must be a JSON object of knob names"),
    "config with hparams a string": ([f"--config={BAD_SUBMISSIONS}/bad_configs/hparams_string.json"],
                                     "hparams_string.json: \"hparams\" must be a JSON object"),
    "config with a null hparam": ([f"--config={BAD_SUBMISSIONS}/bad_configs/hparam_null.json"],
                                  "hparam_null.json: \"hparams\" key 'learning_rate' is null"),
    "config with a list hparam": ([f"--config={BAD_SUBMISSIONS}/bad_configs/hparam_list.json"],
                                  "hparam_list.json: \"hparams\" key 'learning_rate' is [1.0, 0.5]"),
    "config with an unknown field": ([f"--config={BAD_SUBMISSIONS}/bad_configs/unknown_field.json"],
                                     "unknown_field.json: unknown field(s) learning_rate"),
    "DEFAULT_HPARAMS not a dict": ([f"--submission={BAD_SUBMISSIONS}/defaults_not_a_dict.py"],
                                   "does not define DEFAULT_HPARAMS as a dict of hyperparameters (it is a list)"),
    "a default of None": ([f"--submission={BAD_SUBMISSIONS}/defaults_none.py"],
                          "defaults_none.py: DEFAULT_HPARAMS['momentum'] is None (NoneType)"),
    "a default that is a list": ([f"--submission={BAD_SUBMISSIONS}/defaults_list.py"],
                                 "defaults_list.py: DEFAULT_HPARAMS['learning_rate'] is [0.1, 0.01] (list)"),
    # the submission contract (harness/audit.py) and sys.exit in submission code
    "submission reads the test labels at import": (
        [f"--submission={BAD_SUBMISSIONS}/reads_test_labels.py"],
        f"opened {FASHION}/t10k-labels-idx1-ubyte.gz (reads_test_labels.py line 9): a submission must not"),
    "submission swallows the refusal": ([f"--submission={BAD_SUBMISSIONS}/swallows_refusal.py"],
                                        "the submission went on (it caught the refusal"),
    "submission starts a process": ([f"--submission={BAD_SUBMISSIONS}/cats_test_labels.py"],
                                    "must not start processes"),
    "submission exits at import": ([f"--submission={BAD_SUBMISSIONS}/exits_at_import.py"],
                                   "exits_at_import.py called sys.exit(0) at import; a submission must not exit"),
    "submission exits in init": ([f"--submission={BAD_SUBMISSIONS}/exits_in_init.py"],
                                 "exits_in_init called sys.exit(0) in init(params, hparams, ctx)"),
}


def harness_run(results: str, overrides: list[str]) -> list[str]:
    args = {"--workload": "fashion_mnist_resnet", "--submission": "nesterov", "--seeds": "0",
            "--budget": "1", "--results": results, "--progress": "false"}
    for o in overrides:
        key, value = o.split("=", 1)
        args[key] = value
    return ["run", *(f"{k}={v}" for k, v in args.items())]


def assert_one_line_error(result: Result, expected: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines[-3:]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_leaves_results_unchanged(
        name: str, results_db: str, main_in_process: Callable[..., Result]) -> None:
    overrides, expected = CASES[name]
    before = file_digest(results_db)
    assert_one_line_error(main_in_process("harness", *harness_run(results_db, overrides)), expected)
    assert file_digest(results_db) == before


@pytest.mark.parametrize("kind, expected", [("magic", "bad IDX magic number"),
                                            ("size", "header says shape"),
                                            ("shuffled", "t10k-labels-idx1-ubyte.gz: SHA-256")])
def test_corrupt_idx_file(kind: str, expected: str, tmp_path: str, results_db: str,
                          main_in_process: Callable[..., Result]) -> None:
    data_dir = corrupt_data_dir(str(tmp_path), kind)
    before = file_digest(results_db)
    result = main_in_process("harness", *harness_run(results_db, [f"--data_dir={data_dir}"]))
    assert_one_line_error(result, expected)
    assert result.stderr.startswith("error: corrupt data file")
    assert file_digest(results_db) == before


def test_unknown_command_is_a_usage_error(main_in_process: Callable[..., Result]) -> None:
    assert_one_line_error(main_in_process("harness", "train"), "usage: python -m harness")


# --- as real processes: exit codes, no traceback, no JAX for scoring's errors ---------------------


@pytest.mark.cli
def test_process_bad_hparam_exits_2_without_traceback(results_db: str) -> None:
    before = file_digest(results_db)
    proc = run_cli("harness", *harness_run(results_db, ["--hparams={\"learning_rat\": 0.1}"]))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: unknown hparam 'learning_rat'")
    assert file_digest(results_db) == before


@pytest.mark.cli
def test_process_flag_error_exits_2_not_absl_fatal() -> None:
    proc = run_cli("harness", "run", "--budget=ten")
    assert proc.returncode == 2 and "FATAL" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error: flag --budget=ten")


@pytest.mark.cli
def test_process_scoring_bad_flag_does_not_load_jax() -> None:
    proc = run_cli("scoring", "leaderboard", "--bogus",
                   env={"PYTHONPROFILEIMPORTTIME": "1"})  # -X importtime: every import on stderr
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == ("error: Unknown command line flag 'bogus'; "
                                                    "see --help")
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "import time:" in line}
    assert "scoring.aggregate" in imported and not {"jax", "flax", "tensorflow"} & imported


def _entry_points() -> list[str]:
    """Every `python -m` entry point of the suite: packages with a __main__.py and modules with a
    top-level `if __name__ == "__main__":` (found in the sources, so a new one is tested too)."""
    import re

    from conftest import REPO

    found = []
    for package in ("harness", "scoring", "workloads"):
        for root, _, files in os.walk(os.path.join(REPO, package)):
            for name in sorted(files):
                path = os.path.join(root, name)
                if not name.endswith(".py"):
                    continue
                with open(path) as f:
                    is_main = re.search(r'^if __name__ == "__main__":', f.read(), re.MULTILINE)
                if name == "__main__.py" or is_main:
                    module = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                    found.append(module.removesuffix(".__main__"))
    return sorted(found)


ENTRY_POINTS = _entry_points()


def test_the_entry_points_are_found() -> None:
    expected = {"harness", "scoring", "harness.set_target", "harness.bench", "workloads.data.pydocs"}
    assert expected <= set(ENTRY_POINTS)


@pytest.mark.cli
@pytest.mark.slow  # 8 processes, about 20 s in all
@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_process_every_entry_point_reports_an_unknown_flag_in_one_line(module: str) -> None:
    """absl's own handling is `FATAL Flags parsing error` and exit 1 (harness/cli.py run)."""
    proc = run_cli(module, "--no_such_flag=1")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == ["error: Unknown command line flag 'no_such_flag'; see --help"], \
        proc.stderr[-2000:]


# --- the results file is checked before anything compiles ---------------------------------------------


def _damaged_copy(results_db: str, tmp_path: str) -> str:
    """A copy of a real results database whose second page (header and cells) is overwritten."""
    path = os.path.join(tmp_path, "damaged.db")
    shutil.copy(results_db, path)
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:
        f.seek(page)
        f.write(b"\xde\xad\xbe\xef" * (page // 4))
    return path


def _foreign(tmp_path: str, kind: str) -> str:
    import sqlite3

    path = os.path.join(tmp_path, f"{kind}.db")
    if kind == "random bytes":
        with open(path, "wb") as f:
            f.write(os.urandom(4096))
        return path
    conn = sqlite3.connect(path)
    if kind == "foreign runs table":
        conn.execute("CREATE TABLE runs (id INTEGER, name TEXT)")
    elif kind == "unrelated tables":
        conn.execute("CREATE TABLE invoices (id INTEGER, total REAL)")
    elif kind == "other application":
        conn.execute("PRAGMA application_id = 1234")
        conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("kind, expected", [
    ("random bytes", "is not an SQLite database"),
    ("foreign runs table", "holds another program's tables (runs)"),
    ("unrelated tables", "holds another program's tables (invoices)"),
    ("other application", "of another program (application_id 0x4d2)"),
])
def test_foreign_results_files_are_refused_untouched(kind: str, expected: str, tmp_path: str,
                                                    main_in_process: Callable[..., Result]) -> None:
    path = _foreign(str(tmp_path), kind)
    before = file_digest(path)
    assert_one_line_error(main_in_process("harness", *harness_run(path, [])), expected)
    assert file_digest(path) == before and sorted(os.listdir(tmp_path)) == [os.path.basename(path)]
    board = main_in_process("scoring", "leaderboard", f"--results={path}", f"--out={tmp_path}/lb")
    assert board.returncode == 2 and file_digest(path) == before


def test_a_damaged_results_file_is_refused(results_db: str, tmp_path: str,
                                           main_in_process: Callable[..., Result]) -> None:
    path = _damaged_copy(results_db, str(tmp_path))
    before = file_digest(path)
    result = main_in_process("harness", *harness_run(path, []))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "damaged" in result.stderr or "cannot be read" in result.stderr, result.stderr
    assert file_digest(path) == before


def test_dev_null_is_not_a_results_file(main_in_process: Callable[..., Result]) -> None:
    assert_one_line_error(main_in_process("harness", *harness_run("/dev/null", [])), "not a regular file")
    assert not os.path.exists("/dev/null-journal")


def test_special_characters_in_the_results_path(results_db: str, tmp_path: str,
                                                main_in_process: Callable[..., Result]) -> None:
    """scoring opened another file for a path with # or ? (an unescaped file: URI)."""
    path = os.path.join(tmp_path, "r#1?x=2.db")
    shutil.copy(results_db, path)
    result = main_in_process("scoring", "leaderboard", f"--results={path}", f"--out={tmp_path}/out/lb")
    assert result.returncode == 0, result.stderr
    assert "fashion_mnist_resnet" in result.stdout
    # no stray file (SQLite's own -wal/-shm beside the database are its WAL mode's)
    assert set(os.listdir(tmp_path)) <= {"out", "r#1?x=2.db", "r#1?x=2.db-wal", "r#1?x=2.db-shm"}


def test_a_locked_database_is_waited_for(results_db: str, tmp_path: str, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    import sqlite3
    import threading

    from harness import store

    path = os.path.join(tmp_path, "locked.db")
    shutil.copy(results_db, path)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    opened: list[object] = []
    thread = threading.Thread(target=lambda: opened.append(store.connect(path)))
    thread.start()
    thread.join(timeout=3)
    assert thread.is_alive() and not opened  # waiting, not failing
    holder.rollback()
    holder.close()
    thread.join(timeout=30)
    assert opened and "another process holds its lock" in capsys.readouterr().err


def test_run_only_flags_are_refused_by_tune(results_db: str, main_in_process: Callable[..., Result]) -> None:
    before = file_digest(results_db)
    result = main_in_process("harness", "tune", "--workload=fashion_mnist_resnet", "--submission=nesterov",
                             "--trials=2", "--seeds=0-4", f"--results={results_db}")
    assert_one_line_error(result, "--seeds is a flag of `run`, not of `tune`")
    assert file_digest(results_db) == before
