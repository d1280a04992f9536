"""Prediction and feedback, independent of HTTP: what the API handlers call."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from modelmon.artifact import ModelArtifact
from modelmon.config import Settings
from modelmon.contract import Variant, new_prediction_id
from modelmon.drift import DriftWindow
from modelmon.feedback_store import FeedbackStore
from modelmon.metrics import ServingMetrics
from modelmon.quality import QualityWindow
from modelmon.variant_source import VariantSource


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
        self.variant = VariantSource(
            Variant(settings.variant),
            settings.variant_labels_file,
            primary_label=settings.variant_primary_label or None,
        )
        self._random = random.Random()  # noqa: S311  # nosec B311 - fault injection, not security

    def fail_if_injected(self) -> None:
        """Raises InjectedFailure for the share of requests the fault-injection settings ask."""
        ratio = self.settings.inject_error_ratio
        if ratio and self._random.random() < ratio:
            raise InjectedFailure("injected failure (--inject-error-ratio)")

    def model_call(self, matrix: np.ndarray) -> np.ndarray:
        """The model's predictions for the rows, counted and added to the drift window once per
        call (for a whole batch at once when requests were coalesced). Thread-safe: the
        micro-batcher runs it on the model's thread."""
        values = self.model.predict(matrix) + self.settings.inject_prediction_bias
        if self.metrics is not None:
            self.drift.extend(matrix)
            self.metrics.record_predictions(values)
        return values

    def record(self, values: np.ndarray, variant: Variant) -> list[Prediction]:
        """Gives each prediction of one request its id (naming the variant that answers) and
        keeps it for feedback."""
        predictions = [Prediction(new_prediction_id(variant), float(v)) for v in values]
        for prediction in predictions:
            self.store.put(prediction.prediction_id, prediction.value)
        return predictions

    def predict(self, matrix: np.ndarray) -> list[Prediction]:
        self.fail_if_injected()
        return self.record(self.model_call(matrix), self.variant.current)

    def feedback(self, prediction_id: str, truth: float) -> FeedbackResult | None:
        pending = self.store.pop(prediction_id)
        if pending is None:
            return None
        if self.metrics is not None:
            self.quality.add(truth, pending.value)
            self.metrics.record_feedback(truth, pending.value, self.settings.accuracy_tolerance)
        return FeedbackResult(pending.value, abs(truth - pending.value))
