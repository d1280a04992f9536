"""Prediction and feedback, independent of HTTP: what the API handlers call."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from modelmon.artifact import ModelArtifact
from modelmon.config import Settings
from modelmon.contract import Variant, new_prediction_id
from modelmon.drift import DriftWindow
from modelmon.feedback_store import FeedbackStore
from modelmon.metrics import ServingMetrics
from modelmon.quality import QualityWindow


class InvalidInput(ValueError):
    """An input row the model cannot take; `location` names the offending field."""

    def __init__(self, location: tuple[str | int, ...], message: str, kind: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message
        self.kind = kind


class InjectedFailure(RuntimeError):
    """A failure requested by the fault-injection settings (tests only)."""


@dataclass(frozen=True)
class Prediction:
    prediction_id: str
    value: float


@dataclass(frozen=True)
class FeedbackResult:
    prediction: float
    absolute_error: float


class ModelService:
    def __init__(
        self,
        settings: Settings,
        model: ModelArtifact,
        metrics: ServingMetrics | None,
        quality: QualityWindow,
        drift: DriftWindow,
        store: FeedbackStore,
    ) -> None:
        self.settings = settings
        self.model = model
        self.metrics = metrics
        self.quality = quality
        self.drift = drift
        self.store = store
        self._random = random.Random()  # noqa: S311  # nosec B311 - fault injection, not security

    def feature_matrix(self, rows: Sequence[Mapping[str, float]], field: str) -> np.ndarray:
        """The rows as the model's input matrix, in its feature order; InvalidInput names the
        first field that cannot be taken."""
        if not rows:
            raise InvalidInput((field,), "the batch is empty", "empty_batch")
        limit = self.settings.max_batch_rows
        if len(rows) > limit:
            raise InvalidInput(
                (field,),
                f"batch of {len(rows)} rows is over the limit of {limit}",
                "batch_too_large",
            )
        names = self.model.feature_names
        expected = set(names)
        for index, row in enumerate(rows):
            unknown = sorted(set(row) - expected)
            if unknown:
                raise InvalidInput(
                    (field, index, unknown[0]), f"unknown feature {unknown[0]!r}", "unknown_feature"
                )
            missing = [name for name in names if name not in row]
            if missing:
                raise InvalidInput(
                    (field, index, missing[0]), f"missing feature {missing[0]!r}", "missing_feature"
                )
        return np.array([[row[name] for name in names] for row in rows], dtype=np.float64)

    def predict(self, matrix: np.ndarray) -> list[Prediction]:
        settings = self.settings
        if settings.inject_error_ratio and self._random.random() < settings.inject_error_ratio:
            raise InjectedFailure("injected failure (--inject-error-ratio)")
        values = self.model.predict(matrix) + settings.inject_prediction_bias
        variant = Variant(settings.variant)
        predictions = [Prediction(new_prediction_id(variant), float(v)) for v in values]
        for prediction in predictions:
            self.store.put(prediction.prediction_id, prediction.value)
        if self.metrics is not None:
            self.drift.extend(matrix.tolist())
            self.metrics.predictions.inc(len(predictions))
        return predictions

    def feedback(self, prediction_id: str, truth: float) -> FeedbackResult | None:
        pending = self.store.pop(prediction_id)
        if pending is None:
            return None
        if self.metrics is not None:
            self.quality.add(truth, pending.value)
            self.metrics.record_feedback(truth, pending.value, self.settings.accuracy_tolerance)
        return FeedbackResult(pending.value, abs(truth - pending.value))
