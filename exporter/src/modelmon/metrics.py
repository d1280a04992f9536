"""The exporter's metrics: names and labels here are the project's public contract.

Every series carries `variant`, `model_version` and `user_id`, fixed for the life of the process,
so label cardinality is bounded by design: `reason` and `feature` take values from short fixed
lists. Rolling-window scores are computed when Prometheus scrapes, not on every request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelmon.drift import DriftWindow
from modelmon.feedback_store import FeedbackStore
from modelmon.quality import QualityWindow

IDENTITY_LABELS = ("variant", "model_version", "user_id")
ERROR_REASONS = ("bad_input", "internal", "timeout")
FEEDBACK_REJECT_REASONS = ("bad_input", "unknown_prediction")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class Identity:
    variant: str
    model_version: str
    user_id: str

    def values(self) -> list[str]:
        return [self.variant, self.model_version, self.user_id]


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
        labels = list(IDENTITY_LABELS)
        values = self._identity.values()
        mae, r2, accuracy = self._quality.scores()
        for name, documentation, value in (
            ("model_mae_score", "Mean absolute error over the quality window.", mae),
            ("model_r2_score", "Coefficient of determination (R²) over the quality window.", r2),
            (
                "model_accuracy_score",
                "Share (0..1) of predictions within the accuracy tolerance, over the window.",
                accuracy,
            ),
            (
                "model_quality_window_samples",
                "Feedback pairs in the quality window.",
                float(len(self._quality)),
            ),
            (
                "model_drift_window_samples",
                "Input rows in the drift window.",
                float(len(self._drift)),
            ),
            (
                "model_feedback_pending",
                "Predictions waiting for ground truth (bounded by size and age).",
                float(len(self._pending)),
            ),
        ):
            family = GaugeMetricFamily(name, documentation, labels=labels)
            family.add_metric(values, value)
            yield family

        feature_scores = self._drift.scores()
        per_feature = GaugeMetricFamily(
            "model_feature_drift_score",
            "Population stability index of the feature over the drift window against training.",
            labels=[*labels, "feature"],
        )
        for feature, score in feature_scores.items():
            per_feature.add_metric([*values, feature], score)
        yield per_feature
        if feature_scores:
            overall = GaugeMetricFamily(
                "model_drift_score",
                "Largest feature population stability index over the drift window.",
                labels=labels,
            )
            overall.add_metric(values, max(feature_scores.values()))
            yield overall


class ServingMetrics:
    """Counters and histograms updated by request handlers, bound to one identity."""

    def __init__(self, registry: CollectorRegistry, identity: Identity) -> None:
        labels = list(IDENTITY_LABELS)
        values = identity.values()
        self.predictions = Counter(
            "model_prediction",
            "Predictions served (one per input row).",
            labels,
            registry=registry,
        ).labels(*values)
        errors = Counter(
            "model_prediction_errors",
            "Prediction requests that failed, by reason (bad_input, internal, timeout).",
            [*labels, "reason"],
            registry=registry,
        )
        self.errors = {reason: errors.labels(*values, reason) for reason in ERROR_REASONS}
        self.latency = Histogram(
            "model_prediction_latency_seconds",
            "Time to answer a successful prediction request, in seconds.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ).labels(*values)
        self.feedback = Counter(
            "model_feedback",
            "Ground-truth values matched to a prediction.",
            labels,
            registry=registry,
        ).labels(*values)
        rejected = Counter(
            "model_feedback_rejected",
            "Feedback requests refused, by reason (bad_input, unknown_prediction).",
            [*labels, "reason"],
            registry=registry,
        )
        self.feedback_rejected = {
            reason: rejected.labels(*values, reason) for reason in FEEDBACK_REJECT_REASONS
        }
        self.absolute_error = self._sum_counter(
            registry, identity, "model_feedback_absolute_error", "Sum of |truth − prediction|."
        )
        self.squared_error = self._sum_counter(
            registry, identity, "model_feedback_squared_error", "Sum of (truth − prediction)²."
        )
        self.within_tolerance = self._sum_counter(
            registry,
            identity,
            "model_feedback_within_tolerance",
            "Feedback whose prediction was within the accuracy tolerance.",
        )
        self.target_positive = self._sum_counter(
            registry,
            identity,
            "model_feedback_target_positive",
            "Sum of the positive ground-truth values (Σy = positive − negative).",
        )
        self.target_negative = self._sum_counter(
            registry,
            identity,
            "model_feedback_target_negative",
            "Sum of the magnitudes of the negative ground-truth values.",
        )
        self.target_squared = self._sum_counter(
            registry, identity, "model_feedback_target_squared", "Sum of the squared ground truth."
        )
        self.info = Info(
            "model_version",
            "The model being served: name, algorithm and training date.",
            labels,
            registry=registry,
        ).labels(*values)

    @staticmethod
    def _sum_counter(
        registry: CollectorRegistry, identity: Identity, name: str, documentation: str
    ) -> Counter:
        return Counter(name, documentation, list(IDENTITY_LABELS), registry=registry).labels(
            *identity.values()
        )

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
