"""Model quality over the most recent ground-truth feedback."""

from __future__ import annotations

import math
import threading
from collections import deque


class QualityWindow:
    """MAE, R² and accuracy over the last `size` (truth, prediction) pairs.

    Accuracy is the share of predictions within `tolerance` of the truth. Each score is NaN until
    it is defined (R² needs two distinct truths), so an alert on it stays silent instead of firing
    on a made-up number.
    """

    def __init__(self, size: int, tolerance: float) -> None:
        self._pairs: deque[tuple[float, float]] = deque(maxlen=size)
        self._tolerance = tolerance
        self._lock = threading.Lock()

    def add(self, truth: float, prediction: float) -> None:
        with self._lock:
            self._pairs.append((truth, prediction))

    def __len__(self) -> int:
        return len(self._pairs)

    def scores(self) -> tuple[float, float, float]:
        """(mae, r2, accuracy) of the pairs in the window."""
        with self._lock:
            pairs = list(self._pairs)
        if not pairs:
            return math.nan, math.nan, math.nan
        n = len(pairs)
        errors = [truth - prediction for truth, prediction in pairs]
        mae = sum(abs(e) for e in errors) / n
        accuracy = sum(1 for e in errors if abs(e) <= self._tolerance) / n
        mean_truth = sum(truth for truth, _ in pairs) / n
        total = sum((truth - mean_truth) ** 2 for truth, _ in pairs)
        r2 = 1.0 - sum(e * e for e in errors) / total if total > 0 else math.nan
        return mae, r2, accuracy
