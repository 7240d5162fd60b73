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

import bisect
import itertools
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NoReturn, overload

from absl import app, flags
from absl import logging as absl_logging

from harness import interrupts
from harness.errors import SeedsFailed, UserError

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
    """main(argv, fv), with UserError printed as one line on stderr and exit code 2, and SIGINT or
    SIGTERM (harness/interrupts.py) as one line and exit code 128 + the signal number."""
    try:
        return int(main(argv, fv) or 0)
    except UserError as e:
        return _report(e)
    except SeedsFailed as e:
        print(f"error: {one_line(e)}", file=sys.stderr, flush=True)
        return 1
    except (interrupts.Interrupted, KeyboardInterrupt) as e:
        interrupted = interrupts.as_interrupted(e)
        assert interrupted is not None
        print(one_line(interrupted), file=sys.stderr, flush=True)
        return interrupted.exit_code


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
    logging (the terminal is for progress and results), turn SIGINT and SIGTERM into Interrupted
    (harness/interrupts.py), run main and exit with its code."""
    define_flags(flags.FLAGS)
    interrupts.install()

    def parse(argv: list[str]) -> list[str]:
        try:
            return _parse(flags.FLAGS, argv)
        except UserError as e:
            sys.exit(_report(e))

    def entry(argv: list[str]) -> int:
        absl_logging.set_verbosity(absl_logging.WARNING)
        # A submission's host callback that raises is logged by JAX with its traceback, then reaches
        # the harness as the step's error, recorded with that traceback (harness/runner.py).
        logging.getLogger("jax._src.callback").setLevel(logging.CRITICAL)
        code = _call(main, argv, flags.FLAGS)
        if code in interrupts.EXIT_CODES:
            # The run is recorded and the database closed; exit without finalizers: a tf.data
            # iterator cut off mid-epoch deadlocks in its destructor at interpreter teardown (seen
            # after SIGTERM on pydocs_bert: the main thread waited for ever in
            # UnboundedThreadPool::~LogicalThreadWrapper).
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code

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


#: Seeds are ints in [0, SEED_LIMIT). jax.random.PRNGKey(seed) keeps 32 bits of a seed (JAX without
#: x64), so seeds 2^32 apart would train identically yet count as two; below 2^31 every seed is also
#: a valid int32 and an SQLite integer.
SEED_LIMIT = 2 ** 31
#: More seeds than this in one --seeds need --many_seeds: a slip such as 0-100000 would otherwise
#: start 100,001 runs without a word.
MANY_SEEDS = 1000
_SEED_RANGE = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?")


class Seeds(Sequence[int]):
    """Distinct seeds, held as the disjoint ranges of a --seeds value in the order given ('0-4,9':
    range(0, 5), range(9, 10)). Length, membership, indexing and iteration work on the ranges, so
    --seeds=0-2147483647 costs two ints, not 2^31 (a list would be built before any check could
    run). Iterates in the order given (harness.set_target tunes with the first seed)."""

    def __init__(self, ranges: Iterable[range]) -> None:
        """`ranges`: disjoint ranges of step 1 (parse_seeds checks that); empty ones are dropped."""
        self.ranges = tuple(r for r in ranges if len(r))
        self._starts = list(itertools.accumulate((len(r) for r in self.ranges[:-1]), initial=0))
        self._len = sum(len(r) for r in self.ranges)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[int]:
        return itertools.chain.from_iterable(self.ranges)

    def __contains__(self, seed: object) -> bool:
        return any(seed in r for r in self.ranges)

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> Seeds: ...

    def __getitem__(self, index: int | slice) -> int | Seeds:
        if isinstance(index, slice):
            return self._slice(range(self._len)[index])
        position = range(self._len)[index]  # negative indices and IndexError as for a list
        k = bisect.bisect_right(self._starts, position) - 1
        return self.ranges[k][position - self._starts[k]]

    def _slice(self, positions: range) -> Seeds:
        """The seeds at `positions`: a contiguous slice cuts the ranges; a strided one (rare) holds
        one range per seed."""
        if positions.step != 1:
            return Seeds(range(self[p], self[p] + 1) for p in positions)
        parts = []
        for start, r in zip(self._starts, self.ranges):
            low, high = max(positions.start, start), min(positions.stop, start + len(r))
            if low < high:
                parts.append(r[low - start:high - start])
        return Seeds(parts)

    def __str__(self) -> str:
        """The seeds as a --seeds value, e.g. '0-4,9'."""
        return ",".join(str(r.start) if len(r) == 1 else f"{r.start}-{r[-1]}" for r in self.ranges)

    def __repr__(self) -> str:
        return f"Seeds({str(self)!r})"


def parse_seeds(value: str, many: bool = False) -> Seeds:
    """'0-4' -> 0..4; '0,3,7' -> 0, 3, 7; mixed '0-2,9'; in the order given. Seeds are distinct ints
    in [0, 2^31) (SEED_LIMIT); more than MANY_SEEDS of them need `many` (--many_seeds). Ranges are
    never expanded: every check works on their ends."""
    seeds = Seeds(_seed_range(part, value) for part in str(value).split(","))
    repeated = _first_repeat(seeds.ranges)
    if repeated is not None:
        raise UserError(f"--seeds={value} repeats a seed ({repeated}); give each seed once")
    if len(seeds) > MANY_SEEDS and not many:
        raise UserError(f"--seeds={value} is {len(seeds):,} seeds (more than {MANY_SEEDS:,}); pass "
                        "--many_seeds to run them")
    return seeds


def _seed_range(part: str, value: str) -> range:
    """One comma-separated part of --seeds=`value`: 'a' or 'a-b' with a <= b."""
    m = _SEED_RANGE.fullmatch(part)
    if not m:
        raise UserError(f"--seeds: malformed seed range {value!r}; use e.g. 0-4 or 0,3,7 (ints in "
                        f"[0, {SEED_LIMIT - 1}])")
    low = _seed(m.group(1))
    high = low if m.group(2) is None else _seed(m.group(2))
    if high < low:
        raise UserError(f"--seeds: malformed seed range {value!r}: {part.strip()} ends before it starts; "
                        "use e.g. 0-4")
    return range(low, high + 1)


def _seed(digits: str) -> int:
    """A seed's digits as an int in [0, SEED_LIMIT). Checked by length first: int() of thousands
    of digits is refused by Python (sys.set_int_max_str_digits) and pointless here."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(SEED_LIMIT)) or int(significant) >= SEED_LIMIT:
        shown = significant if len(significant) <= 24 else f"{significant[:12]}... ({len(significant)} digits)"
        raise UserError(f"--seeds: seed {shown} is out of range; seeds are ints in [0, {SEED_LIMIT - 1}] "
                        "(JAX keys keep 32 bits of a seed)")
    return int(significant)


def _first_repeat(ranges: Sequence[range]) -> int | None:
    """The smallest seed in two of `ranges`, None when they are disjoint (from the ranges' ends:
    sorted by start, a range repeats a seed when it starts below the end of one before it)."""
    end = 0
    for r in sorted(ranges, key=lambda r: r.start):
        if r.start < end:
            return r.start
        end = max(end, r.stop)
    return None


def command_line(program: str, fv: flags.FlagValues) -> str:
    """`python -m <program>` with the flags that were given, as one shell-quoted line (what a
    study records so that it can be continued or repeated)."""
    import shlex

    given = [f"--{name}={fv[name].value}" for name in sorted(fv) if fv[name].present]
    return " ".join(["python -m", program, *(shlex.quote(g) for g in given)])


def progress_default(value: bool | None) -> bool:
    """--progress: as given, else on when stderr is a terminal."""
    return sys.stderr.isatty() if value is None else value
