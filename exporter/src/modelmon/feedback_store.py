"""Predictions awaiting ground truth, bounded in count and age so memory stays flat."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PendingPrediction:
    value: float
    created: float  # on the store's clock
    features: bytes  # the input row as float64s, when the store was given it


@dataclass(frozen=True)
class LabelledPrediction:
    prediction_id: str
    variant: str
    model_version: str
    predicted_at: float  # Unix seconds
    labelled_at: float
    features: bytes  # the row as float64s, in the model's feature order
    prediction: float
    actual: float


class FeedbackStore:
    """Oldest-first map of prediction id to prediction; the oldest entry goes first when full.

    Entries are plain (value, created, features) tuples of floats and bytes: the garbage
    collector stops tracking those, so a full store adds nothing to a collection's pause
    (dataclass entries made every full collection walk 100,000 objects, a p99 of 100 ms at 64
    connections). The features (80 bytes a row) are kept only for the feedback dataset.
    """

    def __init__(
        self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: OrderedDict[str, tuple[float, float, bytes]] = OrderedDict()
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self.clock = clock
        self._lock = threading.Lock()

    def put(self, prediction_id: str, value: float, features: bytes = b"") -> None:
        now = self.clock()
        with self._lock:
            self._expire(now)
            self._entries[prediction_id] = (value, now, features)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def pop(self, prediction_id: str) -> PendingPrediction | None:
        """The prediction, once: a second feedback for the same id finds nothing."""
        now = self.clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.pop(prediction_id, None)
        return None if entry is None else PendingPrediction(*entry)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _expire(self, now: float) -> None:
        while self._entries:
            _, created, _ = next(iter(self._entries.values()))
            if now - created <= self._ttl:
                return
            self._entries.popitem(last=False)
