"""How a run started from a named config is labelled in the results (harness.configs.label)."""

from harness.configs import label


def test_label_lists_what_was_set_on_top_of_the_config() -> None:
    assert label("mlperf", {}, {}) == "mlperf"
    assert label("mlperf", {"learning_rate": 10.0, "b": 2}, {}) == "mlperf b=2,learning_rate=10"
    assert label("table8", [{"lr": 1}, {"lr": 2}], {"gamma0": 1.0}) == 'table8 [{"lr":1},{"lr":2}] knobs:gamma0=1'
