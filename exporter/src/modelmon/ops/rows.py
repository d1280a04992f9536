"""Feature rows like the training data, optionally shifted (drift), each with its true target.

The truth comes from the dataset's generating function, so drifted rows have a real, known target
and the model's error under drift is its real error.
"""

from __future__ import annotations

import threading

import numpy as np

from modelmon.dataset import FEATURE_NAMES, make_dataset, standardised_truth

Row = dict[str, float]

# Shifts added to features (uniform on [0, 1] in training). The model extrapolates badly outside
# that range, so each level raises its real error more than the last.
DRIFT_LEVELS: dict[str, dict[str, float]] = {
    "none": {},
    "low": {"x4": 0.15},
    "medium": {"x4": 0.3, "x1": 0.15},
    "high": {"x4": 0.6, "x1": 0.3},
}


class Rows:
    """An endless, thread-safe stream of (row, true target) pairs, reproducible from `seed`."""

    def __init__(self, seed: int, shift: dict[str, float] | None = None) -> None:
        data = make_dataset(seed=seed)
        self._features = data.features.copy()
        for name, delta in (shift or {}).items():
            self._features[:, FEATURE_NAMES.index(name)] += delta
        rng = np.random.default_rng(seed)
        self._truth = standardised_truth(self._features, data.target_mean, data.target_std, rng)
        self._next = 0
        self._lock = threading.Lock()

    @classmethod
    def at_level(cls, level: str, seed: int) -> Rows:
        return cls(seed, DRIFT_LEVELS[level])

    def take(self) -> tuple[Row, float]:
        with self._lock:
            index = self._next % len(self._features)
            self._next += 1
        row = dict(zip(FEATURE_NAMES, map(float, self._features[index]), strict=True))
        return row, float(self._truth[index])


def bad_row() -> dict[str, object]:
    """A request body the server must refuse with 422 (a feature that is not a number)."""
    return {"features": {"x1": "not-a-number"}}
