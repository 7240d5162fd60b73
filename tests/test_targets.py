"""reference_results/targets.json through its one reader and writer (workloads/targets.py), and the
rule for a workload without an entry: its declared default budget and UNSET_TARGET, or a one-line
UserError naming the file and `python -m harness.set_target`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from harness.spec import UserError
from workloads import get_workload, targets

FASHION = {"target": 0.834, "step_budget": 117, "metric": "accuracy", "command": "python -m ..."}


@pytest.fixture
def targets_file(tmp_path: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A targets file of its own (holding only fashion_mnist_resnet); target_for's cache is cleared
    before and after, so no other test sees these entries."""
    path = os.path.join(tmp_path, "reference_results", "targets.json")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        json.dump({"fashion_mnist_resnet": FASHION}, f)
    monkeypatch.setattr(targets, "TARGETS_FILE", path)
    targets.target_for.cache_clear()
    yield path
    targets.target_for.cache_clear()


def test_reader_and_writer_round_trip_keeping_other_entries(targets_file: str) -> None:
    assert targets.read_targets() == {"fashion_mnist_resnet": FASHION}
    assert targets.target_for("fashion_mnist_resnet") == (0.834, 117)
    new = {"target": 0.099, "step_budget": 300, "data_fingerprint": "abcd"}
    assert targets.write_entry("pydocs_bert", new) == targets_file
    text = open(targets_file).read()
    assert text.endswith("}\n") and text.startswith('{\n  "fashion_mnist_resnet": {\n    "target": 0.834')
    assert json.loads(text) == {"fashion_mnist_resnet": FASHION, "pydocs_bert": new}
    assert list(json.loads(text)) == ["fashion_mnist_resnet", "pydocs_bert"]  # order kept
    assert targets.target_for("pydocs_bert", 1) == (0.099, 300)  # the writer cleared the cache
    assert targets.current_targets() == {"fashion_mnist_resnet": 0.834, "pydocs_bert": 0.099}
    targets.write_entry("fashion_mnist_resnet", {**FASHION, "target": 0.85})
    assert list(targets.read_targets()) == ["fashion_mnist_resnet", "pydocs_bert"]  # replaced in place
    assert targets.target_for("fashion_mnist_resnet") == (0.85, 117)
    assert os.listdir(os.path.dirname(targets_file)) == ["targets.json"]  # no temporary file left


def test_the_shipped_file_is_written_back_byte_for_byte(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: str) -> None:
    """The writer's format is set_target's: rewriting an entry unchanged changes no byte."""
    shipped = open(targets.TARGETS_FILE).read()
    copy = os.path.join(tmp_path, "targets.json")
    with open(copy, "w") as f:
        f.write(shipped)
    monkeypatch.setattr(targets, "TARGETS_FILE", copy)
    try:
        for name, entry in targets.read_targets().items():
            targets.write_entry(name, entry)
    finally:
        targets.target_for.cache_clear()
    assert open(copy).read() == shipped


def test_missing_entry_without_a_default_budget_is_a_one_line_user_error(targets_file: str) -> None:
    with pytest.raises(UserError) as e:
        targets.target_for("fashion_mnist_lenet")
    message = str(e.value)
    assert "reference_results/targets.json" in message and "python -m harness.set_target" in message
    assert "--workload=fashion_mnist_lenet" in message and "\n" not in message
    with pytest.raises(UserError, match="fashion_mnist_lenet has no entry"):
        get_workload("fashion_mnist_lenet")  # the target and budget are read when it is built


def test_missing_entry_with_a_default_budget_runs_with_the_unset_target(targets_file: str) -> None:
    assert targets.target_for("new_workload", 40) == (targets.UNSET_TARGET, 40)
    from workloads.pydocs_bert import DEFAULT_STEP_BUDGET, split_budget

    wl = get_workload("pydocs_bert")  # set_target constructs it before its entry exists
    assert wl.target == targets.UNSET_TARGET == 1.0
    assert [p.steps for p in wl.phases] == split_budget(DEFAULT_STEP_BUDGET)
    targets.write_entry("pydocs_bert", {"target": 0.25, "step_budget": 100})
    wl = get_workload("pydocs_bert")
    assert wl.target == 0.25 and wl.step_budget == 100 and [p.steps for p in wl.phases] == [90, 10]


def test_missing_or_corrupt_file(targets_file: str) -> None:
    os.remove(targets_file)
    assert targets.read_targets() == {} and targets.current_targets() == {}
    assert targets.fingerprint_warning("pydocs_bert", "abcd") is None
    with open(targets_file, "w") as f:
        f.write("{not json")
    with pytest.raises(UserError, match="cannot parse .*targets.json: .* line 1 column 2; restore it with `git "
                                        "checkout"):
        targets.read_targets()
    with open(targets_file, "w") as f:
        f.write("[]")
    with pytest.raises(UserError, match="no JSON object"):
        targets.current_targets()
