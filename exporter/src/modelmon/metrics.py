"""The exporter's metrics, built from the contract (modelmon.contract) that names them.

Every series carries `variant`, `model_version` and `user_id`, fixed for the life of the process,
so label cardinality is bounded by design: `reason` and `feature` take values from short fixed
lists. Rolling-window scores are computed when Prometheus scrapes, not on every request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple, dataclass
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelmon import contract
from modelmon.contract import DatasetOutcome, FeedbackRejection, PredictionError
from modelmon.drift import DriftWindow
from modelmon.feedback_store import FeedbackStore
from modelmon.loop_histogram import LoopHistogram
from modelmon.quality import QualityWindow


@dataclass(frozen=True)
class Identity:
    """The values of contract.IDENTITY_LABELS, in that order."""

    variant: str
    model_version: str
    user_id: str

    def values(self) -> list[str]:
        return list(astuple(self))


def labelled(spec: contract.Metric, registry: CollectorRegistry, **kwargs: Any) -> Any:
    """The prometheus_client metric for a contract entry."""
    kind = {"counter": Counter, "gauge": Gauge, "histogram": Histogram, "info": Info}[spec.type]
    return kind(spec.client_name, spec.help, list(spec.labels), registry=registry, **kwargs)


def _gauge(spec: contract.Metric, values: list[str], value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    family.add_metric(values, value)
    return family


class WindowCollector(Collector):
    """Scores over the recent windows, read at scrape time."""

    def __init__(
        self,
        identity: Identity,
        quality: QualityWindow,
        drift: DriftWindow,
        pending: FeedbackStore,
    ) -> None:
        self._identity = identity
        self._quality = quality
        self._drift = drift
        self._pending = pending

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        values = self._identity.values()
        mae, r2, accuracy = self._quality.scores()
        yield _gauge(contract.MAE_SCORE, values, mae)
        yield _gauge(contract.R2_SCORE, values, r2)
        yield _gauge(contract.ACCURACY_SCORE, values, accuracy)
        yield _gauge(contract.QUALITY_WINDOW_SAMPLES, values, float(len(self._quality)))
        yield _gauge(contract.DRIFT_WINDOW_SAMPLES, values, float(len(self._drift)))
        yield _gauge(contract.FEEDBACK_PENDING, values, float(len(self._pending)))

        feature_scores = self._drift.scores()
        spec = contract.FEATURE_DRIFT_SCORE
        per_feature = GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))
        for feature, score in feature_scores.items():
            per_feature.add_metric([*values, feature], score)
        yield per_feature
        if feature_scores:
            yield _gauge(contract.DRIFT_SCORE, values, max(feature_scores.values()))


# Below this many rows a Python loop sums faster than numpy's per-call overhead (≈ 1 µs against 4).
SMALL_BATCH_ROWS = 16


def output_sums(values: np.ndarray) -> tuple[float, float, float]:
    """Σ of the positive values, Σ of the negative ones' magnitudes, Σ of the squares."""
    if len(values) < SMALL_BATCH_ROWS:
        positive = negative = squared = 0.0
        for value in values.tolist():
            squared += value * value
            if value > 0:
                positive += value
            else:
                negative -= value
        return positive, negative, squared
    negative = float(-values[values < 0].sum())
    # the difference of two rounded sums may land a hair below zero when no value is positive
    return max(float(values.sum()) + negative, 0.0), negative, float(values @ values)


class PredictionCounters(Collector):
    """The prediction counter and the three sums of the predicted values, as plain floats.

    One model call adds to all four; prometheus_client's Counter would take a lock for each (1.7
    µs a call against 0.4). The price: one thread at a time may add, which holds because only
    the thread that runs the model calls add() (the micro-batcher's, or the event loop's
    without batching). A scrape reads the four floats as they are.
    """

    _SPECS = (
        contract.PREDICTIONS,
        contract.PREDICTION_OUTPUT_POSITIVE,
        contract.PREDICTION_OUTPUT_NEGATIVE,
        contract.PREDICTION_OUTPUT_SQUARED,
    )

    def __init__(self, label_values: Iterable[str]) -> None:
        self._label_values = list(label_values)
        self._totals = [0.0, 0.0, 0.0, 0.0]

    def add(self, values: np.ndarray) -> None:
        positive, negative, squared = output_sums(values)
        totals = self._totals
        totals[0] += len(values)
        totals[1] += positive
        totals[2] += negative
        totals[3] += squared

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        for spec, total in zip(self._SPECS, list(self._totals), strict=True):
            family = CounterMetricFamily(spec.client_name, spec.help, labels=list(spec.labels))
            family.add_metric(self._label_values, total)
            yield family


class ServingMetrics:
    """Counters and histograms updated by request handlers, bound to one identity."""

    def __init__(self, registry: CollectorRegistry, identity: Identity) -> None:
        values = identity.values()
        self.identity_values = values

        def bound(spec: contract.Metric, **kwargs: Any) -> Any:
            return labelled(spec, registry, **kwargs).labels(*values)

        self.predictions = PredictionCounters(values)
        registry.register(self.predictions)
        errors = labelled(contract.PREDICTION_ERRORS, registry)
        self.errors = {reason: errors.labels(*values, reason) for reason in PredictionError}

        def on_the_loop(spec: contract.Metric, buckets: tuple[float, ...]) -> LoopHistogram:
            histogram = LoopHistogram(spec, values, buckets)
            registry.register(histogram)
            return histogram

        # Observed by /predict and the micro-batcher, on the event loop only.
        self.latency = on_the_loop(contract.PREDICTION_LATENCY, contract.LATENCY_BUCKETS)
        self.batch_rows = on_the_loop(contract.BATCH_ROWS, contract.BATCH_ROWS_BUCKETS)
        self.queue_wait = on_the_loop(contract.QUEUE_WAIT, contract.QUEUE_WAIT_BUCKETS)
        self.queue_rows = bound(contract.QUEUE_ROWS)
        self.feedback = bound(contract.FEEDBACK)
        rejected = labelled(contract.FEEDBACK_REJECTED, registry)
        self.feedback_rejected = {
            reason: rejected.labels(*values, reason) for reason in FeedbackRejection
        }
        self.absolute_error = bound(contract.FEEDBACK_ABSOLUTE_ERROR)
        self.squared_error = bound(contract.FEEDBACK_SQUARED_ERROR)
        self.within_tolerance = bound(contract.FEEDBACK_WITHIN_TOLERANCE)
        self.target_positive = bound(contract.FEEDBACK_TARGET_POSITIVE)
        self.target_negative = bound(contract.FEEDBACK_TARGET_NEGATIVE)
        self.target_squared = bound(contract.FEEDBACK_TARGET_SQUARED)
        self.info = bound(contract.MODEL_INFO)
        dataset_rows = labelled(contract.FEEDBACK_DATASET_ROWS, registry)
        self.dataset_rows = {
            outcome: dataset_rows.labels(*values, outcome) for outcome in DatasetOutcome
        }
        self.dataset_write_failures = bound(contract.FEEDBACK_DATASET_WRITE_FAILURES)

    # What the micro-batcher reports (modelmon.batching.BatchObserver).
    def batch_formed(self, rows: int) -> None:
        self.batch_rows.observe(rows)

    def request_waited(self, seconds: float) -> None:
        self.queue_wait.observe(seconds)

    def record_predictions(self, values: np.ndarray) -> None:
        """One model call's predicted values: their count and sums."""
        self.predictions.add(values)

    def record_feedback(self, truth: float, prediction: float, tolerance: float) -> None:
        error = truth - prediction
        self.feedback.inc()
        self.absolute_error.inc(abs(error))
        self.squared_error.inc(error * error)
        if abs(error) <= tolerance:
            self.within_tolerance.inc()
        if truth >= 0:
            self.target_positive.inc(truth)
        else:
            self.target_negative.inc(-truth)
        self.target_squared.inc(truth * truth)
