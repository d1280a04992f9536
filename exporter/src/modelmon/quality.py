"""Model quality over the most recent ground-truth feedback."""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass


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


@dataclass(frozen=True)
class QualitySums:
    """The sufficient statistics that the feedback counters export.

    Sums from several processes (or the increase of the counters over a PromQL window) add up,
    and the scores computed from the totals equal the scores over all the pairs at once.
    """

    n: float
    absolute_error: float
    squared_error: float
    target: float
    target_squared: float

    def __add__(self, other: QualitySums) -> QualitySums:
        return QualitySums(
            self.n + other.n,
            self.absolute_error + other.absolute_error,
            self.squared_error + other.squared_error,
            self.target + other.target,
            self.target_squared + other.target_squared,
        )

    @property
    def mae(self) -> float:
        return self.absolute_error / self.n if self.n else math.nan

    @property
    def r2(self) -> float:
        """1 − SSE/SST with SST = Σy² − (Σy)²/n."""
        if self.n < 2:
            return math.nan
        total = self.target_squared - self.target * self.target / self.n
        return 1.0 - self.squared_error / total if total > 0 else math.nan
