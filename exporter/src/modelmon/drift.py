"""Input drift: the population stability index (PSI) of recent inputs against training.

For each feature the training data fixed decile bins; the window counts recent inputs per bin and
PSI = Σ (actual − expected) · ln(actual / expected) over the bins. Rule of thumb: below 0.1 no
shift, 0.1–0.25 moderate, above 0.25 a significant shift. The overall score is the largest
feature PSI: one shifted feature is enough to call the input drifted.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import deque
from collections.abc import Mapping, Sequence

from modelmon.artifact import FeatureReference

# Keeps ln() finite when a bin is empty in the window; small against a decile's 0.1.
EMPTY_BIN_SHARE = 1e-4


def population_stability_index(expected: Sequence[float], actual: Sequence[float]) -> float:
    psi = 0.0
    for e, a in zip(expected, actual, strict=True):
        e = max(e, EMPTY_BIN_SHARE)
        a = max(a, EMPTY_BIN_SHARE)
        psi += (a - e) * math.log(a / e)
    return psi


class DriftWindow:
    """Per-bin counts of the last `size` input rows, kept up to date as rows come and go."""

    def __init__(self, reference: Mapping[str, FeatureReference], size: int) -> None:
        self._features = tuple(reference)
        self._edges = [reference[f].edges for f in self._features]
        self._expected = [reference[f].expected_share for f in self._features]
        self._counts = [[0] * len(expected) for expected in self._expected]
        self._rows: deque[tuple[int, ...]] = deque()
        self._size = size
        self._lock = threading.Lock()

    @property
    def features(self) -> tuple[str, ...]:
        return self._features

    def add(self, row: Sequence[float]) -> None:
        bins = tuple(
            bisect.bisect_right(edges, value) for edges, value in zip(self._edges, row, strict=True)
        )
        with self._lock:
            if len(self._rows) == self._size:
                for counts, old in zip(self._counts, self._rows.popleft(), strict=True):
                    counts[old] -= 1
            self._rows.append(bins)
            for counts, new in zip(self._counts, bins, strict=True):
                counts[new] += 1

    def __len__(self) -> int:
        return len(self._rows)

    def scores(self) -> dict[str, float]:
        """PSI per feature; empty while the window holds no rows."""
        with self._lock:
            n = len(self._rows)
            counts = [list(c) for c in self._counts]
        if n == 0:
            return {}
        return {
            feature: population_stability_index(expected, [c / n for c in feature_counts])
            for feature, expected, feature_counts in zip(
                self._features, self._expected, counts, strict=True
            )
        }
