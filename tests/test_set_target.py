"""The pure parts of the target-setting procedure."""

from harness.set_target import grid_points, target_from
from harness.spec import Direction


def test_grid_points_is_the_full_product_in_key_order() -> None:
    points = grid_points({"momentum": [0.9, 0.95], "learning_rate": [1, 2]})
    assert points == [{"learning_rate": 1, "momentum": 0.9}, {"learning_rate": 1, "momentum": 0.95},
                      {"learning_rate": 2, "momentum": 0.9}, {"learning_rate": 2, "momentum": 0.95}]
    assert grid_points({}) == [{}]  # no grid: one point, the defaults


def test_target_is_the_rounded_median_towards_easier() -> None:
    values = [0.8564, 0.83, 0.8359, 0.7867, 0.8346]  # fashion_mnist_resnet, reference_results
    assert target_from(values, Direction.MAXIMIZE) == 0.834
    assert target_from([0.5, None, 0.7], Direction.MAXIMIZE) == 0.6  # a diverged seed is skipped
    assert target_from([1.2341, 1.2, 1.3], Direction.MINIMIZE) == 1.235
    assert target_from([0.83], Direction.MAXIMIZE) == 0.83  # exact values are not rounded down
