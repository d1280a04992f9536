"""Input drift: the population stability index (PSI) of recent inputs against training.

For each feature the training data fixed decile bins; the window counts recent inputs per bin and
PSI = Σ (actual − expected) · ln(actual / expected) over the bins. Rule of thumb: below 0.1 no
shift, 0.1–0.25 moderate, above 0.25 a significant shift. The overall score is the largest
feature PSI: one shifted feature is enough to call the input drifted.

PSI over few rows is noise: with k bins and n rows of undrifted input it is about χ²(k−1)/n, so
10 bins and 20 rows score ~0.45 on average. No score is given below `min_rows` (at 200 rows the
99th percentile of that noise is 0.11, well under the 0.25 alert threshold).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

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
    """The last `size` input rows, in a ring buffer; binned against the reference only when
    scores are read.

    Appending is all a request pays for (a copy into the buffer, no Python object per row); the
    binning runs, vectorised, at scrape time.
    """

    def __init__(
        self, reference: Mapping[str, FeatureReference], size: int, min_rows: int = 1
    ) -> None:
        if not 1 <= min_rows <= size:
            raise ValueError(f"min_rows must be within 1..{size} (the window), got {min_rows}")
        self._min_rows = min_rows
        self._features = tuple(reference)
        self._edges = [np.asarray(reference[f].edges) for f in self._features]
        self._expected = [reference[f].expected_share for f in self._features]
        self._buffer = np.empty((size, len(self._features)), dtype=np.float64)
        self._next = 0  # where the next row goes
        self._count = 0
        self._lock = threading.Lock()

    def add(self, row: Sequence[float]) -> None:
        self.extend([row])

    def extend(self, rows: Iterable[Sequence[float]] | np.ndarray) -> None:
        size, width = self._buffer.shape
        block = np.asarray(rows, dtype=np.float64).reshape(-1, width)[-size:]
        added = len(block)
        with self._lock:
            start = self._next
            first = min(added, size - start)
            self._buffer[start : start + first] = block[:first]
            self._buffer[: added - first] = block[first:]
            self._next = (start + added) % size
            self._count = min(size, self._count + added)

    def __len__(self) -> int:
        return self._count

    def scores(self) -> dict[str, float]:
        """PSI per feature; empty while the window holds fewer than `min_rows` rows."""
        with self._lock:
            rows = self._buffer[: self._count].copy()  # PSI counts rows; their order is moot
        if len(rows) < self._min_rows:
            return {}
        scores = {}
        for column, (feature, edges, expected) in enumerate(
            zip(self._features, self._edges, self._expected, strict=True)
        ):
            bins = np.searchsorted(edges, rows[:, column], side="right")
            counts = np.bincount(bins, minlength=len(expected))
            scores[feature] = population_stability_index(expected, (counts / len(rows)).tolist())
        return scores
