"""Bad input: each case is a one-line error, exit code 2, and an unchanged results database.

The cases run the entry point in-process (harness.cli.invoke: the real flag parsing and error
handling); a few run it as a real process, for the exit code and traceback-free output."""

from __future__ import annotations

import gzip
import os
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
    "dataset missing": (["--data_dir=/nonexistent/fmnist"], "apt-get install dataset-fashion-mnist"),
    "results not writable": (["--results=/nonexistent/dir/results.db"], "cannot create results database"),
    "zero budget": (["--budget=0"], "--budget must be a positive"),
    "budget not an integer": (["--budget=ten"], "flag --budget=ten"),
    "unknown flag": (["--learning_rate=0.1"], "Unknown command line flag 'learning_rate'"),
    "hparams list of the wrong length": (["--hparams=[{}, {}]"], "has 2 mapping(s) but the workload has 1 phase"),
    "hparams list of non-objects": (["--hparams=[1, 2]"], "must be a list of JSON objects"),
    "unknown config": (["--config=nope"], "unknown config 'nope' for submission nesterov"),
    "config for another workload": (["--config=config_a"], "is for workload imagenet_resnet50"),
    "diagnostics_every negative": (["--diagnostics_every=-1"], "--diagnostics_every must be >= 0"),
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
                                            ("size", "header says shape")])
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
