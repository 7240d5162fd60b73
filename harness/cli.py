"""The command-line conventions of every entry point: absl flags defined by the entry point's
``define_flags(fv)`` (called under ``__main__`` only, or on a fresh FlagValues in tests), bad input
reported as one line ``error: ...`` with exit code 2 (flag errors included), and the parsing of
JSON-or-file mappings and seed ranges.

An entry point module looks like::

    def define_flags(fv: flags.FlagValues) -> None: ...
    def main(argv: list[str], fv: flags.FlagValues) -> int | None: ...
    if __name__ == "__main__":
        cli.run(define_flags, main)

and tests call ``cli.invoke(define_flags, main, argv)`` in-process.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from absl import app, flags
from absl import logging as absl_logging

from harness.errors import UserError

Main = Callable[[list[str], flags.FlagValues], "int | None"]
DefineFlags = Callable[[flags.FlagValues], None]

EXIT_USER_ERROR = 2


def one_line(error: BaseException) -> str:
    """The error's message on one line (whitespace runs collapsed)."""
    return " ".join(str(error).split())


def _report(error: UserError) -> int:
    """Print the error as the one line `error: ...` on stderr; the exit code of bad input."""
    print(f"error: {one_line(error)}", file=sys.stderr, flush=True)
    return EXIT_USER_ERROR


def _parse(fv: flags.FlagValues, argv: list[str]) -> list[str]:
    """Parse `argv` into `fv`; a flag error (unknown flag, bad value) is a UserError."""
    try:
        return fv(argv)
    except flags.Error as e:
        raise UserError(f"{one_line(e)}; see --help") from None


def _call(main: Main, argv: list[str], fv: flags.FlagValues) -> int:
    """main(argv, fv), with UserError printed as one line on stderr and exit code 2."""
    try:
        return int(main(argv, fv) or 0)
    except UserError as e:
        return _report(e)


def invoke(define_flags: DefineFlags, main: Main, argv: list[str]) -> int:
    """Run an entry point in-process on fresh flags (argv[0] is the program name); returns the
    exit code. What `run` does, without absl's process setup: for tests."""
    fv = flags.FlagValues()
    define_flags(fv)
    try:
        rest = _parse(fv, list(argv))
    except UserError as e:
        return _report(e)
    return _call(main, rest, fv)


def run(define_flags: DefineFlags, main: Main) -> NoReturn:
    """The program's entry: define the flags, parse them (errors: one line, exit 2), quiet absl's
    logging (the terminal is for progress and results), run main and exit with its code."""
    define_flags(flags.FLAGS)

    def parse(argv: list[str]) -> list[str]:
        try:
            return _parse(flags.FLAGS, argv)
        except UserError as e:
            sys.exit(_report(e))

    def entry(argv: list[str]) -> int:
        absl_logging.set_verbosity(absl_logging.WARNING)
        return _call(main, argv, flags.FLAGS)

    app.run(entry, flags_parser=parse)
    raise AssertionError("app.run returned")  # it exits


# --- parsing of flag values ------------------------------------------------------------------------


def parse_json_mapping(value: str | None, what: str, allow_list: bool = False) -> Any:
    """A JSON object given inline ('{"learning_rate": 0.1}') or as a path to a .json file.

    With `allow_list`, a JSON list of objects is accepted too (hparams per phase).
    """
    if not value:
        return {}
    text, source = value, "inline JSON"
    if not value.lstrip().startswith(("{", "[") if allow_list else "{"):
        if not os.path.isfile(value):
            raise UserError(f"--{what}: {value} is neither a JSON object nor an existing file")
        with open(value) as f:
            text, source = f.read(), value
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--{what}: cannot parse {source}: {e.msg} at line {e.lineno} column {e.colno}"
                        ) from None
    if allow_list and isinstance(parsed, list):
        if not all(isinstance(p, dict) for p in parsed):
            raise UserError(f"--{what}: {source} must be a list of JSON objects, one per phase")
        return parsed
    if not isinstance(parsed, dict):
        raise UserError(f"--{what}: {source} must be a JSON object mapping names to values"
                        + (" (or a list of such objects, one per phase)" if allow_list else ""))
    return parsed


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


def parse_seeds(value: str) -> list[int]:
    """'0-4' -> [0..4]; '0,3,7' -> [0, 3, 7]; mixed '0-2,9'. Seeds are distinct non-negative ints."""
    seeds: list[int] = []
    for part in str(value).split(","):
        m = _RANGE.match(part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise UserError(f"--seeds: malformed seed range {value!r}; use e.g. 0-4 or 0,3,7")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds: {value!r} repeats a seed")
    return seeds


def command_line(program: str, fv: flags.FlagValues) -> str:
    """`python -m <program>` with the flags that were given, as one shell-quoted line (what a
    study records so that it can be continued or repeated)."""
    import shlex

    given = [f"--{name}={fv[name].value}" for name in sorted(fv) if fv[name].present]
    return " ".join(["python -m", program, *(shlex.quote(g) for g in given)])


def progress_default(value: bool | None) -> bool:
    """--progress: as given, else on when stderr is a terminal."""
    return sys.stderr.isatty() if value is None else value
