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
from collections import deque
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
    """The last `size` input rows, kept as the blocks they came in; binned against the reference
    only when scores are read.

    Appending is all a request pays for, and it copies nothing: the block is kept by reference.
    (Copying a batch into a buffer made numpy release the GIL, and the model's thread then waited
    for the event loop to hand it back.)
    """

    def __init__(
        self, reference: Mapping[str, FeatureReference], size: int, min_rows: int = 1
    ) -> None:
        if not 1 <= min_rows <= size:
            raise ValueError(f"min_rows must be within 1..{size} (the window), got {min_rows}")
        self._size = size
        self._min_rows = min_rows
        self._features = tuple(reference)
        self._edges = [np.asarray(reference[f].edges) for f in self._features]
        self._expected = [reference[f].expected_share for f in self._features]
        self._blocks: deque[np.ndarray] = deque()
        self._rows = 0  # in the blocks; the oldest block may reach past the window
        self._lock = threading.Lock()

    def add(self, row: Sequence[float]) -> None:
        self.extend([row])

    def extend(self, rows: Iterable[Sequence[float]] | np.ndarray) -> None:
        block = np.asarray(rows, dtype=np.float64).reshape(-1, len(self._features))
        with self._lock:
            self._blocks.append(block)
            self._rows += len(block)
            while self._rows - len(self._blocks[0]) >= self._size:
                self._rows -= len(self._blocks.popleft())

    def __len__(self) -> int:
        return min(self._rows, self._size)

    def scores(self) -> dict[str, float]:
        """PSI per feature; empty while the window holds fewer than `min_rows` rows."""
        with self._lock:
            blocks = list(self._blocks)
        rows = np.concatenate(blocks)[-self._size :] if blocks else np.empty((0, 0))
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
