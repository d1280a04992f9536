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


def test_no_score_until_the_window_has_enough_rows_for_psi_to_mean_something():
    rng = np.random.default_rng(3)
    training = rng.uniform(size=(5000, 2))
    window = DriftWindow(reference_from_training(training, FEATURES), size=1000, min_rows=200)
    for row in rng.uniform(size=(199, 2)):
        window.add(row.tolist())
    assert window.scores() == {}
    window.add(rng.uniform(size=2).tolist())
    assert max(window.scores().values()) < 0.11


def test_few_rows_of_undrifted_input_would_look_drifted():
    # why min_rows exists: 20 undrifted rows score like a significant shift
    rng = np.random.default_rng(4)
    window = _window(rng.uniform(size=(5000, 2)), size=1000)
    for row in rng.uniform(size=(20, 2)):
        window.add(row.tolist())
    assert max(window.scores().values()) > 0.25


@pytest.mark.parametrize("min_rows", [0, 11])
def test_min_rows_must_fit_the_window(min_rows):
    reference = reference_from_training(np.random.default_rng(5).uniform(size=(100, 2)), FEATURES)
    with pytest.raises(ValueError, match="min_rows"):
        DriftWindow(reference, 10, min_rows)


@pytest.mark.parametrize("chunks", [[7, 7], [3, 3, 3, 3, 3], [25], [9, 1, 10]])
def test_the_window_holds_exactly_the_last_rows_however_they_arrive(chunks):
    rng = np.random.default_rng(3)
    training = rng.uniform(size=(1000, 2))
    rows = rng.uniform(size=(sum(chunks), 2)) * np.linspace(0.5, 1.5, sum(chunks))[:, None]
    window = _window(training, size=10)
    start = 0
    for chunk in chunks:
        window.extend(rows[start : start + chunk])
        start += chunk
    exact = _window(training, size=10)
    exact.extend(rows[-10:].tolist())
    assert len(window) == min(10, sum(chunks))
    assert window.scores() == exact.scores()
