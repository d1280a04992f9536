import math

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, r2_score

from modelmon.quality import QualityWindow


def test_scores_equal_sklearn_on_the_same_pairs():
    rng = np.random.default_rng(7)
    truth = rng.normal(size=300)
    predicted = truth + rng.normal(scale=0.4, size=300)
    window = QualityWindow(size=300, tolerance=0.5)
    for t, p in zip(truth, predicted, strict=True):
        window.add(float(t), float(p))
    mae, r2, accuracy = window.scores()
    assert mae == pytest.approx(mean_absolute_error(truth, predicted), rel=1e-12)
    assert r2 == pytest.approx(r2_score(truth, predicted), rel=1e-12)
    assert accuracy == pytest.approx(np.mean(np.abs(truth - predicted) <= 0.5))


def test_window_keeps_only_the_most_recent_pairs():
    window = QualityWindow(size=2, tolerance=0.1)
    window.add(0.0, 10.0)
    window.add(1.0, 1.0)
    window.add(2.0, 2.0)
    mae, r2, accuracy = window.scores()
    assert (mae, r2, accuracy) == (0.0, 1.0, 1.0)


def test_scores_are_nan_until_defined():
    window = QualityWindow(size=10, tolerance=0.5)
    assert all(math.isnan(s) for s in window.scores())
    window.add(1.0, 1.2)
    mae, r2, _ = window.scores()
    assert mae == pytest.approx(0.2)
    assert math.isnan(r2), "R² needs two distinct truths"
