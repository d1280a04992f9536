"""The public contract of modelmon: the names other programs rely on, each defined once.

Prometheus rules, Grafana dashboards, routers, clients and the operations tools all read what is
named here: the two variants, every metric with its type and labels, the recording rules the
alerts judge, the error reasons, the prediction-id format, the error body and the labels that
mark an alert as a reason to retrain. Python code imports these names; the chart, the rules and
the dashboards hold literals only where YAML or JSON must, and tests/test_contract.py renders
them and checks that they agree with this module.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal


class Variant(StrEnum):
    """The two sides of the canary split; every series of a model carries one as `variant`."""

    STABLE = "stable"
    CANARY = "canary"

    @property
    def other(self) -> Variant:
        return Variant.CANARY if self is Variant.STABLE else Variant.STABLE


VARIANTS: tuple[Variant, ...] = tuple(Variant)

# Labels every model series carries: fixed for the life of a process, so cardinality is bounded.
VARIANT_LABEL = "variant"
MODEL_VERSION_LABEL = "model_version"
USER_LABEL = "user_id"
# The pod label that names a pod's variant: Services select on it, and a delivery engine
# (Argo Rollouts) changes it on running pods when it promotes them.
VARIANT_POD_LABEL = "modelmon.io/variant"
# Flagger copies the canary's pod labels to its primary Deployment and appends this to the
# value of the one label it selects on (pkg/canary/deployment_controller.go, makePrimaryLabels):
# a pod whose selector label ends in it is stable.
PRIMARY_SUFFIX = "-primary"
IDENTITY_LABELS: tuple[str, ...] = (VARIANT_LABEL, MODEL_VERSION_LABEL, USER_LABEL)


class PredictionError(StrEnum):
    """`reason` of model_prediction_errors_total."""

    BAD_INPUT = "bad_input"
    INTERNAL = "internal"
    OVERLOADED = "overloaded"  # refused with 503 at once: the queue to the model was full


class FeedbackRejection(StrEnum):
    """`reason` of model_feedback_rejected_total."""

    BAD_INPUT = "bad_input"
    UNKNOWN_PREDICTION = "unknown_prediction"


class DatasetOutcome(StrEnum):
    """What became of a labelled prediction sent to the feedback dataset."""

    WRITTEN = "written"
    DROPPED = "dropped"


class RouterRoute(StrEnum):
    """`route` of the router's series: the two paths it forwards."""

    PREDICT = "predict"
    FEEDBACK = "feedback"


MetricType = Literal["counter", "gauge", "histogram", "summary", "info"]
_CLIENT_SUFFIX = {"counter": "_total", "info": "_info"}


@dataclass(frozen=True)
class Metric:
    """One metric family: `name` as Prometheus stores it (counters end in _total)."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]
    info_keys: tuple[str, ...] = ()  # the keys an info metric adds as labels

    @property
    def client_name(self) -> str:
        """The name prometheus_client is given: it adds _total to counters, _info to infos."""
        return self.name.removesuffix(_CLIENT_SUFFIX.get(self.type, ""))

    def series(self) -> tuple[str, ...]:
        """The series names this family exposes."""
        if self.type == "histogram":
            return tuple(f"{self.name}_{part}" for part in ("bucket", "sum", "count"))
        if self.type == "summary":
            return tuple(f"{self.name}_{part}" for part in ("sum", "count"))
        return (self.name,)

    def __str__(self) -> str:
        return self.name


def _model(
    name: str, type_: MetricType, help_text: str, *extra: str, info_keys: tuple[str, ...] = ()
) -> Metric:
    return Metric(name, type_, help_text, (*IDENTITY_LABELS, *extra), info_keys)


PREDICTIONS = _model("model_prediction_total", "counter", "Predictions served (one per input row).")
# The predicted values' sums, for the gate's comparison of the canary's predictions with stable's
# before any label has come (mean and variance over any PromQL window).
PREDICTION_OUTPUT_POSITIVE = _model(
    "model_prediction_output_positive_total",
    "counter",
    "Sum of the positive predicted values (Σŷ = positive − negative).",
)
PREDICTION_OUTPUT_NEGATIVE = _model(
    "model_prediction_output_negative_total",
    "counter",
    "Sum of the magnitudes of the negative predicted values.",
)
PREDICTION_OUTPUT_SQUARED = _model(
    "model_prediction_output_squared_total", "counter", "Sum of the squared predicted values."
)
PREDICTION_ERRORS = _model(
    "model_prediction_errors_total",
    "counter",
    "Prediction requests that failed, by reason (bad_input, internal, overloaded).",
    "reason",
)
PREDICTION_LATENCY = _model(
    "model_prediction_latency_seconds",
    "histogram",
    "Time to answer a successful prediction request, in seconds.",
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_ROWS = _model(
    "model_prediction_batch_rows",
    "histogram",
    "Input rows per model call, after concurrent requests were coalesced.",
)
BATCH_ROWS_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
QUEUE_WAIT = _model(
    "model_prediction_queue_wait_seconds",
    "histogram",
    "Time a prediction request waited for its model call, in seconds.",
)
QUEUE_WAIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
QUEUE_ROWS = _model(
    "model_prediction_queue_rows",
    "gauge",
    "Input rows waiting for a model call (the queue's depth).",
)
FEEDBACK = _model("model_feedback_total", "counter", "Ground-truth values matched to a prediction.")
FEEDBACK_REJECTED = _model(
    "model_feedback_rejected_total",
    "counter",
    "Feedback requests refused, by reason (bad_input, unknown_prediction).",
    "reason",
)
FEEDBACK_ABSOLUTE_ERROR = _model(
    "model_feedback_absolute_error_total", "counter", "Sum of |truth − prediction|."
)
FEEDBACK_SQUARED_ERROR = _model(
    "model_feedback_squared_error_total", "counter", "Sum of (truth − prediction)²."
)
FEEDBACK_WITHIN_TOLERANCE = _model(
    "model_feedback_within_tolerance_total",
    "counter",
    "Feedback whose prediction was within the accuracy tolerance.",
)
FEEDBACK_TARGET_POSITIVE = _model(
    "model_feedback_target_positive_total",
    "counter",
    "Sum of the positive ground-truth values (Σy = positive − negative).",
)
FEEDBACK_TARGET_NEGATIVE = _model(
    "model_feedback_target_negative_total",
    "counter",
    "Sum of the magnitudes of the negative ground-truth values.",
)
FEEDBACK_TARGET_SQUARED = _model(
    "model_feedback_target_squared_total", "counter", "Sum of the squared ground truth."
)
# The HTTP metrics of prometheus-fastapi-instrumentator (v8), which the curriculum's serving
# dashboard reads: its names, label names, label values and buckets (its default()), plus our
# identity labels. `handler` is the route's path ("none" for a path the server does not have),
# `status` its class ("2xx"), `method` one of HTTP_METHODS or "OTHER" (bounded, unlike theirs).
# Sizes are the Content-Length headers (0 without one), as theirs are.
HTTP_REQUESTS = _model(
    "http_requests_total",
    "counter",
    "HTTP requests answered, by method, status class and handler.",
    "method",
    "status",
    "handler",
)
HTTP_REQUEST_SIZE = _model(
    "http_request_size_bytes",
    "summary",
    "Content-Length of the requests, by handler, in bytes (0 without the header).",
    "handler",
)
HTTP_RESPONSE_SIZE = _model(
    "http_response_size_bytes",
    "summary",
    "Content-Length of the responses, by handler, in bytes (0 without the header).",
    "handler",
)
HTTP_DURATION_HIGHR = _model(
    "http_request_duration_highr_seconds",
    "histogram",
    "Time from request to the end of the response, in seconds; many buckets, no HTTP labels.",
)
HTTP_DURATION_HIGHR_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
    7.5, 10.0, 30.0, 60.0,
)  # fmt: skip
HTTP_DURATION = _model(
    "http_request_duration_seconds",
    "histogram",
    "Time from request to the end of the response, by method and handler, in seconds.",
    "method",
    "handler",
)
HTTP_DURATION_BUCKETS = (0.1, 0.5, 1.0)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HTTP_OTHER_METHOD = "OTHER"
HTTP_NO_HANDLER = "none"
HTTP_METRICS = (
    HTTP_REQUESTS,
    HTTP_REQUEST_SIZE,
    HTTP_RESPONSE_SIZE,
    HTTP_DURATION_HIGHR,
    HTTP_DURATION,
)
MODEL_INFO = _model(
    "model_version_info",
    "info",
    "The model being served: name, algorithm and training date.",
    info_keys=("model_name", "algorithm", "trained_at"),
)
MAE_SCORE = _model("model_mae_score", "gauge", "Mean absolute error over the quality window.")
R2_SCORE = _model(
    "model_r2_score", "gauge", "Coefficient of determination (R²) over the quality window."
)
ACCURACY_SCORE = _model(
    "model_accuracy_score",
    "gauge",
    "Share (0..1) of predictions within the accuracy tolerance, over the window.",
)
QUALITY_WINDOW_SAMPLES = _model(
    "model_quality_window_samples", "gauge", "Feedback pairs in the quality window."
)
DRIFT_WINDOW_SAMPLES = _model(
    "model_drift_window_samples", "gauge", "Input rows in the drift window."
)
FEEDBACK_PENDING = _model(
    "model_feedback_pending",
    "gauge",
    "Predictions waiting for ground truth (bounded by size and age).",
)
FEATURE_DRIFT_SCORE = _model(
    "model_feature_drift_score",
    "gauge",
    "Population stability index of the feature over the drift window against training.",
    "feature",
)
DRIFT_SCORE = _model(
    "model_drift_score",
    "gauge",
    "Largest feature population stability index over the drift window.",
)
FEEDBACK_DATASET_ROWS = _model(
    "model_feedback_dataset_rows_total",
    "counter",
    "Labelled predictions the feedback dataset received, by outcome (written; dropped when "
    "storage refused writes for longer than the buffer holds).",
    "outcome",
)
FEEDBACK_DATASET_WRITE_FAILURES = _model(
    "model_feedback_dataset_write_failures_total",
    "counter",
    "Writes of the feedback dataset that storage refused (the rows are kept and retried).",
)

ROUTER_REQUESTS = Metric(
    "router_requests_total",
    "counter",
    "Requests answered by the router, by the variant that served them and status code.",
    (USER_LABEL, VARIANT_LABEL, "route", "code"),
)
ROUTER_REQUEST_DURATION = Metric(
    "router_request_duration_seconds",
    "histogram",
    "Time from request to answer through the router, in seconds.",
    (USER_LABEL, VARIANT_LABEL, "route"),
)
ROUTER_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
ROUTER_CANARY_WEIGHT = Metric(
    "router_canary_weight_ratio",
    "gauge",
    "Configured share (0..1) of prediction traffic for the canary.",
    (USER_LABEL,),
)
ROUTER_FAILOVERS = Metric(
    "router_failovers_total",
    "counter",
    "Predictions retried on the other variant after a connection failure.",
    (USER_LABEL, "from_variant", "to_variant"),
)
ROUTER_WEIGHT_FILE_ERRORS = Metric(
    "router_weight_file_errors_total",
    "counter",
    "Times the weight file could not be read; the last good weight stays in force.",
    (USER_LABEL,),
)

WEBHOOK_REJECTED = Metric(
    "modelmon_ops_webhook_rejected_total",
    "counter",
    "Webhook requests refused for a missing or wrong bearer token.",
    ("reason",),
)
WEBHOOK_NOTIFICATIONS = Metric(
    "modelmon_ops_webhook_notifications_total",
    "counter",
    "Authenticated Alertmanager notifications received.",
    (),
)
RETRAIN_DECISIONS = Metric(
    "modelmon_ops_retrain_decisions_total",
    "counter",
    "Retrain decisions, by what was done.",
    ("action",),
)

EXPORTER_METRICS: tuple[Metric, ...] = (
    PREDICTIONS,
    PREDICTION_OUTPUT_POSITIVE,
    PREDICTION_OUTPUT_NEGATIVE,
    PREDICTION_OUTPUT_SQUARED,
    PREDICTION_ERRORS,
    PREDICTION_LATENCY,
    BATCH_ROWS,
    QUEUE_WAIT,
    QUEUE_ROWS,
    FEEDBACK,
    FEEDBACK_REJECTED,
    FEEDBACK_ABSOLUTE_ERROR,
    FEEDBACK_SQUARED_ERROR,
    FEEDBACK_WITHIN_TOLERANCE,
    FEEDBACK_TARGET_POSITIVE,
    FEEDBACK_TARGET_NEGATIVE,
    FEEDBACK_TARGET_SQUARED,
    MODEL_INFO,
    MAE_SCORE,
    R2_SCORE,
    ACCURACY_SCORE,
    QUALITY_WINDOW_SAMPLES,
    DRIFT_WINDOW_SAMPLES,
    FEEDBACK_PENDING,
    FEATURE_DRIFT_SCORE,
    DRIFT_SCORE,
    FEEDBACK_DATASET_ROWS,
    FEEDBACK_DATASET_WRITE_FAILURES,
    *HTTP_METRICS,
)
ROUTER_METRICS: tuple[Metric, ...] = (
    ROUTER_REQUESTS,
    ROUTER_REQUEST_DURATION,
    ROUTER_CANARY_WEIGHT,
    ROUTER_FAILOVERS,
    ROUTER_WEIGHT_FILE_ERRORS,
)
WEBHOOK_METRICS: tuple[Metric, ...] = (WEBHOOK_REJECTED, WEBHOOK_NOTIFICATIONS, RETRAIN_DECISIONS)
METRICS: tuple[Metric, ...] = (*EXPORTER_METRICS, *ROUTER_METRICS, *WEBHOOK_METRICS)


class RecordingRule(StrEnum):
    """The recording rules of rules/recording.yaml that the alerts and the tools read."""

    PREDICTIONS_RATE = "model:predictions:rate"
    ERROR_RATIO = "model:error_ratio"
    LATENCY_P95 = "model:latency_seconds:p95"
    FEEDBACK_INCREASE = "model:feedback:increase"
    MAE = "model:mae"
    ACCURACY = "model:accuracy"
    R2 = "model:r2"


# What makes an alert a reason to retrain: the quality alerts of rules/alerts.yaml carry this
# label (the AlertmanagerConfig routes on it, the webhook acts on it) and the measure they judge.
ACTION_LABEL = "action"
RETRAIN_ACTION = "retrain"
MEASURE_LABEL = "measure"
# Every alert with a threshold carries its value and its threshold as annotations.
VALUE_ANNOTATION = "value"
THRESHOLD_ANNOTATION = "threshold"


class Measure(StrEnum):
    """A quality measure an alert judges, and which way is worse."""

    MAE = "mae"
    R2 = "r2"
    ACCURACY = "accuracy"
    DRIFT = "drift"

    @property
    def worse_when(self) -> Literal[">", "<"]:
        return ">" if self in (Measure.MAE, Measure.DRIFT) else "<"

    @property
    def display(self) -> str:
        return {"mae": "MAE", "r2": "R²", "accuracy": "accuracy", "drift": "drift"}[self]


# Request and response headers of the router.
VARIANT_HEADER = "X-Model-Variant"
FAILOVER_HEADER = "X-Canary-Failover"

# A prediction id names the variant that made it, so feedback can be routed back to it.
_PREDICTION_ID = re.compile(r"(?P<variant>[a-z]+)-(?P<token>[0-9a-f]{32})")
PREDICTION_ID_MAX_LENGTH = 64
# The lab's path for the liveness check; the exporter and the router answer it as /healthz.
LAB_HEALTH_PATH = "/healthcheck"


def new_prediction_id(variant: Variant) -> str:
    return f"{variant}-{uuid.uuid4().hex}"


def variant_of_prediction(prediction_id: object) -> Variant | None:
    """The variant that made the prediction, or None when the id is not one of ours."""
    if not isinstance(prediction_id, str):
        return None
    match = _PREDICTION_ID.fullmatch(prediction_id)
    if match is None or match["variant"] not in VARIANTS:
        return None
    return Variant(match["variant"])


# Error kinds that more than one server answers with (the `type` of an error detail).
UNKNOWN_PREDICTION = "unknown_prediction"
UNKNOWN_PREDICTION_MESSAGE = "unknown or expired prediction id"


def error_body(loc: Sequence[str | int], message: str, kind: str) -> dict[str, Any]:
    """Every 4xx/5xx body of the exporter and the router: `{"detail": [{loc, msg, type}]}`,
    the shape FastAPI gives validation errors, so clients parse one shape."""
    return {"detail": [{"loc": list(loc), "msg": message, "type": kind}]}
