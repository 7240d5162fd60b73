"""The measurement logic of the benchmark scripts (harness.timing) (not timings: those are the script's job)."""

from __future__ import annotations

from harness.timing import alternate, best_time_ratio, median_and_quartiles


def test_alternate_runs_every_side_once_per_round_in_abba_order() -> None:
    calls: list[str] = []
    reports: list[int] = []
    sides = {name: (lambda name=name: calls.append(name) or float(len(calls))) for name in ("a", "b", "c")}
    times = alternate(sides, rounds=3, report=lambda r, t: reports.append(r))
    assert calls == ["a", "b", "c", "c", "b", "a", "a", "b", "c"]
    assert reports == [0, 1, 2]
    # Each side's list holds its own results, in round order.
    assert times == {"a": [1.0, 6.0, 7.0], "b": [2.0, 5.0, 8.0], "c": [3.0, 4.0, 9.0]}


def test_median_and_quartiles() -> None:
    assert median_and_quartiles([0.9]) == "0.900"
    assert median_and_quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == "3.000 (interquartile range 2.000-4.000)"


def test_best_time_ratio_takes_the_fastest_time_of_each_segment() -> None:
    bare = [[1.0, 2.0], [3.0, 1.5]]       # fastest segments: 1.0 and 1.5
    harness = [[2.0, 2.0], [1.25, 4.0]]   # fastest segments: 1.25 and 2.0
    assert best_time_ratio(bare, harness) == 2.5 / 3.25
