"""--seeds: distinct ints in [0, 2^31), parsed without expanding ranges, more than 1,000 only with
--many_seeds (harness/cli.py parse_seeds); and the study seeds' bound (harness/study.py)."""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable

import pytest
from conftest import Result

from harness import cli
from harness.errors import UserError

# Orders and overlaps of ranges, against Python's own list semantics (indexing, slicing, `in`).
SPECS = ["0", "0-4", "7,0-2,10-12", "5,3,9-9,100-103,1", "2147483640-2147483647,0-3"]
SLICES = [slice(None), slice(1, None), slice(2, 5), slice(-3, None), slice(None, -1), slice(None, None, 2),
          slice(None, None, -1), slice(5, 1, -2), slice(4, 4), slice(100, 200)]


def test_a_range_of_2_31_seeds_is_held_by_its_ends() -> None:
    """A list of the old parser would need 2^31 ints (~80 GB) before any check: MemoryError."""
    tracemalloc.start()
    start = time.perf_counter()
    seeds = cli.parse_seeds("0-2147483647", many=True)
    assert len(seeds) == 2 ** 31
    assert seeds[-1] == 2 ** 31 - 1 and seeds[2 ** 30] == 2 ** 30
    assert 2 ** 31 - 1 in seeds and 2 ** 31 not in seeds and -1 not in seeds
    assert list(seeds[2 ** 31 - 3:]) == [2 ** 31 - 3, 2 ** 31 - 2, 2 ** 31 - 1]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000 and time.perf_counter() - start < 1.0


def test_the_length_of_a_huge_range_is_known_before_the_count_check() -> None:
    with pytest.raises(UserError, match=r"^--seeds=0-2147483647 is 2,147,483,648 seeds \(more than 1,000\); "
                                        r"pass --many_seeds to run them$"):
        cli.parse_seeds("0-2147483647")


@pytest.mark.parametrize("spec", SPECS)
def test_seeds_behave_as_the_list_they_stand_for(spec: str) -> None:
    seeds = cli.parse_seeds(spec)
    expected: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        expected.extend(range(int(low), int(high or low) + 1))
    assert list(seeds) == expected  # the order given, not sorted
    assert len(seeds) == len(expected) and list(reversed(seeds)) == expected[::-1]
    assert [seeds[i] for i in range(-len(expected), len(expected))] == expected + expected  # negative, then not
    for s in SLICES:
        assert list(seeds[s]) == expected[s], s
    for v in [-1, 0, 1, 2, 3, 4, 5, 8, 9, 10, 12, 13, 99, 100, 104, 2147483639, 2147483640, 2147483647, 2 ** 31]:
        assert (v in seeds) == (v in expected), v
    with pytest.raises(IndexError):
        seeds[len(expected)]
    assert str(seeds) == spec.replace("9-9", "9") and cli.parse_seeds(str(seeds)).ranges == seeds.ranges


def test_a_seed_given_once_may_sit_next_to_another_range() -> None:
    assert list(cli.parse_seeds(" 3 - 5 , 6, 0-2 ")) == [3, 4, 5, 6, 0, 1, 2]
    assert list(cli.parse_seeds("0000007")) == [7]
    assert len(cli.parse_seeds("0-999")) == 1000  # the limit itself needs no flag
    assert len(cli.parse_seeds("0-1000", many=True)) == 1001


@pytest.mark.parametrize("value, message", [
    ("2147483648", "seed 2147483648 is out of range; seeds are ints in [0, 2147483647]"),
    ("4294967296", "seed 4294967296 is out of range"),  # PRNGKey(2^32) == PRNGKey(0)
    ("0-9999999999", "seed 9999999999 is out of range"),
    ("99999999999999999999", "seed 99999999999999999999 is out of range"),
    ("1" + "0" * 5000, "seed 100000000000... (5001 digits) is out of range"),  # past int()'s digit limit
    ("0-5,3-8", "--seeds=0-5,3-8 repeats a seed (3); give each seed once"),
    ("9,0-10", "repeats a seed (9)"),
    ("0-10,2", "repeats a seed (2)"),
    ("3,3", "repeats a seed (3)"),
    ("0-100000", "--seeds=0-100000 is 100,001 seeds (more than 1,000); pass --many_seeds to run them"),
    ("0-1000", "is 1,001 seeds"),
    ("4-0", "malformed seed range '4-0': 4-0 ends before it starts"),
    ("-1", "malformed seed range '-1'"),
    ("1.5", "malformed seed range"),
    ("", "malformed seed range"),
    ("0,", "malformed seed range"),
    ("\u0663", "malformed seed range"),  # ARABIC-INDIC DIGIT THREE: int() would take it
])
def test_bad_seeds_are_one_line_errors(value: str, message: str) -> None:
    with pytest.raises(UserError) as raised:
        cli.parse_seeds(value)
    text = str(raised.value)
    assert message in text and "\n" not in text and len(text) < 200


def test_bad_seeds_create_no_results_database(tmp_path: str, main_in_process: Callable[..., Result]) -> None:
    """The old parser let 99999999999999999999 through to compilation, then an OverflowError after the
    database was created."""
    results = os.path.join(tmp_path, "new.db")
    for seeds in ("99999999999999999999", "0-100000"):
        out = main_in_process("harness", "run", "--workload=fashion_mnist_resnet", "--submission=nesterov",
                              f"--seeds={seeds}", "--budget=1", f"--results={results}", "--progress=false")
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and out.stdout == ""
        assert not os.path.exists(results)


@pytest.mark.parametrize("study_seed, studies, ok", [
    (2 ** 31 - 1, 1, True), (2 ** 31 - 2, 2, True), (2 ** 31 - 1, 2, False), (2 ** 31, 1, False),
    (99999999999999999999, 1, False)])
def test_study_seeds_lie_in_the_seed_range(study_seed: int, studies: int, ok: bool) -> None:
    from harness.study import StudySpec

    spec = StudySpec(workload="fashion_mnist_resnet", submission="nesterov", trials=1, study_seed=study_seed,
                     studies=studies)
    if ok:
        spec.check()
    else:
        with pytest.raises(UserError, match=r"study seeds are ints in \[0, 2147483647\]"):
            spec.check()
