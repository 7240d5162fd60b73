"""The files a submission's id hashes (harness/submission_sources.py, submission_loader.source_files):
its module(s) and the submissions modules they import, transitively -- not every file of
submissions/lib/, so that an edit of one lib module changes only the ids of its users."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest
from _submission_helpers import REPO

from harness import submission_loader as loader
from harness import submission_sources


def names(files: list[str], submissions_dir: str | Path = REPO / "submissions") -> set[str]:
    return {os.path.relpath(f, submissions_dir) for f in files}


def test_nesterov_hashes_what_it_imports_and_nothing_else() -> None:
    """nesterov imports sgd's module (its builder) and lib's protocol, schedules, valid_ranges; sgd
    adds masks, and masks transforms. Not grafting, corrections or clipping (it never imports them);
    sgd/submission.py is in (it was not, when only lib was hashed)."""
    got = names(loader.source_files(loader.load("nesterov")))
    assert got == {"__init__.py", "lib/__init__.py", "nesterov/submission.py", "sgd/submission.py",
                   "lib/masks.py", "lib/protocol.py", "lib/schedules.py", "lib/transforms.py",
                   "lib/valid_ranges.py"}


def test_a_graft_hashes_both_children_and_the_grafting_code() -> None:
    got = names(loader.source_files(loader.load("adamw#sgd")))
    # the harness grafts an M#D with lib/graft_protocol.py (and what it imports)
    assert {"adamw/submission.py", "sgd/submission.py", "lib/clipping.py", "lib/graft_protocol.py",
            "lib/grafting.py"} <= got
    builtin = names(loader.source_files(loader.load("adam_graft_sgd")))
    assert {"adam_graft_sgd/submission.py", "lib/graft_protocol.py", "lib/grafting.py"} <= builtin
    assert "lib/corrections.py" not in builtin


@pytest.fixture()
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of submissions/ that the loader hashes instead of the repository's."""
    copy = tmp_path / "submissions"
    shutil.copytree(REPO / "submissions", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(loader, "SUBMISSIONS_DIR", str(copy))
    return copy


def hash_of(name: str, tree: Path) -> str:
    sub = dataclasses.replace(loader.load(name), path=str(tree / name / "submission.py"), children=None)
    return loader.source_hash(sub)


def test_editing_a_lib_module_changes_only_its_users_ids(tree: Path) -> None:
    before = {name: hash_of(name, tree) for name in ("nesterov", "sgd_corrected", "lamb")}
    with open(tree / "lib" / "corrections.py", "a") as f:  # sgd_corrected's, not nesterov's nor lamb's
        f.write("\n# an edit\n")
    after = {name: hash_of(name, tree) for name in before}
    assert after["nesterov"] == before["nesterov"] and after["lamb"] == before["lamb"]
    assert after["sgd_corrected"] != before["sgd_corrected"]
    with open(tree / "lib" / "transforms.py", "a") as f:  # imported by all three (through masks)
        f.write("\n# an edit\n")
    assert all(hash_of(name, tree) != after[name] for name in before)
    with open(tree / "sgd" / "submission.py", "a") as f:  # nesterov's builder
        f.write("\n# an edit\n")
    assert hash_of("nesterov", tree) != hash_of("lamb", tree)


def test_imports_are_parsed_not_executed(tmp_path: Path) -> None:
    """A user's module: the submissions modules it imports anywhere (a function body too, a relative
    form inside the package) are followed; other packages, dynamic imports and a module that does
    not exist are not; nothing is imported."""
    subs = tmp_path / "submissions"
    (subs / "lib").mkdir(parents=True)
    (subs / "__init__.py").write_text("")
    (subs / "lib" / "__init__.py").write_text("")
    (subs / "lib" / "a.py").write_text("from . import b\nraise SystemExit('never imported')\n")
    (subs / "lib" / "b.py").write_text("X = 1\n")
    (subs / "lib" / "c.py").write_text("")
    (subs / "lib" / "unused.py").write_text("")
    mine = tmp_path / "mine.py"
    mine.write_text("import jax\nimport importlib\nfrom submissions.lib.b import X\n"
                    "def f():\n    import submissions.lib.a\n    from submissions.lib import c, missing\n"
                    "    return importlib.import_module('submissions.lib.unused')\n")
    got = names(submission_sources.source_files([str(mine)], str(subs)), subs)
    assert got == {"../mine.py", "__init__.py", "lib/__init__.py", "lib/a.py", "lib/b.py", "lib/c.py"}
