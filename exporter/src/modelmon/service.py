"""Prediction and feedback, independent of HTTP: what the API handlers call."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from modelmon.artifact import ModelArtifact
from modelmon.config import Settings
from modelmon.contract import Variant, new_prediction_id, variant_of_prediction
from modelmon.drift import DriftWindow
from modelmon.feedback_store import FeedbackStore, LabelledPrediction
from modelmon.metrics import ServingMetrics
from modelmon.quality import QualityWindow
from modelmon.variant_source import VariantSource

if TYPE_CHECKING:  # pyarrow, under it, is imported only when the dataset is on (40 MiB)
    from modelmon.feedback_dataset import FeedbackDataset


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
        dataset: FeedbackDataset | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.metrics = metrics
        self.quality = quality
        self.drift = drift
        self.store = store
        self.dataset = dataset
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

    def record(self, values: np.ndarray, variant: Variant, matrix: np.ndarray) -> list[Prediction]:
        """Gives each prediction of one request its id (naming the variant that answers) and
        keeps it for feedback, with its input row when the feedback dataset will want it."""
        predictions = [Prediction(new_prediction_id(variant), float(v)) for v in values]
        if self.dataset is None:
            for prediction in predictions:
                self.store.put(prediction.prediction_id, prediction.value)
        else:
            for prediction, row in zip(predictions, matrix, strict=True):
                self.store.put(prediction.prediction_id, prediction.value, row.tobytes())
        return predictions

    def predict(self, matrix: np.ndarray) -> list[Prediction]:
        self.fail_if_injected()
        return self.record(self.model_call(matrix), self.variant.current, matrix)

    def feedback(self, prediction_id: str, truth: float) -> FeedbackResult | None:
        pending = self.store.pop(prediction_id)
        if pending is None:
            return None
        if self.metrics is not None:
            self.quality.add(truth, pending.value)
            self.metrics.record_feedback(truth, pending.value, self.settings.accuracy_tolerance)
        if self.dataset is not None and pending.features:
            now = time.time()
            self.dataset.append(
                LabelledPrediction(
                    prediction_id=prediction_id,
                    variant=str(variant_of_prediction(prediction_id) or self.variant.current),
                    model_version=self.model.version,
                    predicted_at=now - (self.store.clock() - pending.created),
                    labelled_at=now,
                    features=pending.features,
                    prediction=pending.value,
                    actual=truth,
                )
            )
        return FeedbackResult(pending.value, abs(truth - pending.value))
