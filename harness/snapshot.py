"""A consistent copy of a results database, taken while other processes write it.

Studies run for hours and outlive the session or machine that started them; their database lives
under results/ (kept out of git), so scripts/studies.sh keeps a copy where git sees it and restores
from that copy when the database is missing, and the same command then continues the studies.

Written by hand around the standard library because copying the file (cp, shutil) is not safe
here: the harness writes in WAL mode, so committed transactions may still sit in the `-wal` file
beside the database, and a copy taken during a checkpoint can tear a page. SQLite's online backup
(`sqlite3.Connection.backup`) copies page by page inside one read transaction, so the copy is the
database as of one commit. The copy is made in a temporary file next to the destination, checked
(`PRAGMA quick_check`), switched to a rollback journal (one self-contained file, no `-wal`
beside it) and renamed over the destination, so a reader of the destination never sees half a copy.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import tempfile

from absl import flags

from harness import cli, store
from harness.errors import UserError


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What a copy holds: the destination and its counts of runs and studies."""
    path: str
    runs: int
    studies: int
    bytes: int


def snapshot(source: str, destination: str) -> Snapshot:
    """Copy the results database `source` to `destination` as of one commit (see the module
    docstring); UserError if `source` is not a results database or the copy fails its check."""
    src = store.open_readonly(source)
    directory = os.path.dirname(os.path.abspath(destination))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(destination) + ".", suffix=".tmp", dir=directory)
    os.close(fd)
    mask = os.umask(0)  # mkstemp makes the file private (0600); the copy gets a new file's mode
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise UserError(f"the copy of {source} failed its check ({check}); {destination} was not "
                                "replaced, run the snapshot again")
            runs = dst.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            tables = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            studies = dst.execute("SELECT COUNT(*) FROM studies").fetchone()[0] if "studies" in tables else 0
        finally:
            dst.close()
        os.replace(tmp, destination)
    finally:
        src.close()
        if os.path.exists(tmp):
            os.remove(tmp)
    return Snapshot(destination, runs, studies, os.path.getsize(destination))


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("results", None, "The results database to copy.", flag_values=fv)
    flags.DEFINE_string("out", None, "Where the copy goes (replaced atomically).", flag_values=fv)


def main(argv: list[str], fv: flags.FlagValues) -> int:
    """Copy --results to --out, then one line saying what was copied."""
    if len(argv) > 1 or not fv.results or not fv.out:
        raise UserError("usage: python -m harness.snapshot --results=SOURCE.db --out=COPY.db")
    copy = snapshot(fv.results, fv.out)
    print(f"snapshot {fv.results} -> {copy.path}: {copy.runs} runs, {copy.studies} studies, "
          f"{copy.bytes / 1e6:.1f} MB", flush=True)
    return 0


if __name__ == "__main__":
    cli.run(define_flags, main)
