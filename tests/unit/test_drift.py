import numpy as np
import pytest

from modelmon.artifact import reference_from_training
from modelmon.drift import DriftWindow, population_stability_index

FEATURES = ("a", "b")


def _window(training: np.ndarray, size: int) -> DriftWindow:
    return DriftWindow(reference_from_training(training, FEATURES), size)


def test_psi_is_zero_for_identical_shares_and_grows_with_the_shift():
    expected = [0.25, 0.25, 0.25, 0.25]
    assert population_stability_index(expected, expected) == 0.0
    small = population_stability_index(expected, [0.3, 0.25, 0.25, 0.2])
    large = population_stability_index(expected, [0.7, 0.1, 0.1, 0.1])
    assert 0 < small < large


def test_reference_data_scores_near_zero_and_shifted_data_high():
    rng = np.random.default_rng(1)
    training = rng.uniform(size=(5000, 2))
    window = _window(training, size=2000)
    for row in rng.uniform(size=(2000, 2)):
        window.add(row.tolist())
    same = window.scores()
    assert max(same.values()) < 0.02
    for row in rng.uniform(size=(2000, 2)) + np.array([0.5, 0.0]):
        window.add(row.tolist())
    shifted = window.scores()
    assert shifted["a"] > 1.0
    assert shifted["b"] < 0.02


def test_window_forgets_old_rows():
    training = np.random.default_rng(2).uniform(size=(1000, 2))
    window = _window(training, size=10)
    for _ in range(50):
        window.add([5.0, 5.0])
    assert len(window) == 10
    assert window.scores()["a"] == pytest.approx(window.scores()["b"])
