"""Exporter settings from command-line flags, each with an environment-variable default."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelmon import __version__
from modelmon.contract import HTTP_METRICS, VARIANTS, Variant
from modelmon.flags import (
    Flag,
    add_flags,
    boolean,
    finite_float,
    non_negative_float,
    port_number,
    positive_float,
    positive_int,
    ratio,
)

ENV_PREFIX = "MODELMON_"
# Batching defaults, chosen from bench/results-exporter.md (the reasons are written there).
BATCHING_MAX_ROWS = "256"
BATCHING_MAX_WAIT_SECONDS = "0.002"
BATCHING_QUEUE_ROWS = "2048"


def variant(text: str) -> Variant:
    try:
        return Variant(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(VARIANTS)}") from None


def optional_path(text: str) -> Path | None:
    return Path(text) if text.strip() else None


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    variant: Variant
    variant_labels_file: Path | None
    variant_primary_label: str
    model_path: Path
    user_id: str
    quality_window: int
    accuracy_tolerance: float
    drift_window: int
    drift_min_samples: int
    feedback_max_entries: int
    feedback_ttl_seconds: float
    feedback_dataset_url: str
    feedback_dataset_flush_rows: int
    feedback_dataset_flush_seconds: float
    feedback_dataset_max_buffered_rows: int
    max_batch_rows: int
    max_body_bytes: int
    metrics_enabled: bool
    http_metrics: bool
    batching: bool
    batching_max_rows: int
    batching_max_wait_seconds: float
    batching_queue_rows: int
    model_threads: int
    inject_latency_seconds: float
    inject_error_ratio: float
    inject_prediction_bias: float


FLAGS = (
    Flag("--host", "address to listen on", "0.0.0.0"),  # noqa: S104  # nosec B104 - the pod IP
    Flag("--port", "port to listen on", "8080", {"type": port_number}),
    Flag(
        "--variant",
        "which side of the canary split this process is",
        Variant.STABLE,
        {"type": variant, "metavar": "{" + ",".join(VARIANTS) + "}"},
    ),
    Flag(
        "--variant-labels-file",
        "the pod's labels (a downward API file); its modelmon.io/variant label, re-read when it "
        "changes, overrides --variant in answers (empty: --variant only)",
        "",
        {"type": optional_path},
    ),
    Flag(
        "--variant-primary-label",
        "without modelmon.io/variant in the labels file: the label whose value ends in -primary "
        "on stable pods and not on canary pods (Flagger's selector label; empty: none)",
        "",
    ),
    Flag(
        "--model-path",
        "model artifact (joblib) to serve",
        "/opt/modelmon/models/model-v1.joblib",
        {"type": Path},
    ),
    Flag("--user-id", "static user_id label of every metric (one per release)", "default"),
    Flag(
        "--quality-window",
        "feedback pairs behind the MAE/R²/accuracy gauges",
        "500",
        {"type": positive_int},
    ),
    Flag(
        "--accuracy-tolerance",
        "a prediction is accurate within this distance of the truth",
        "0.5",
        {"type": non_negative_float},
    ),
    Flag("--drift-window", "input rows behind the drift scores", "1000", {"type": positive_int}),
    Flag(
        "--drift-min-samples",
        "rows the drift window needs before it scores (PSI over fewer is noise)",
        "200",
        {"type": positive_int},
    ),
    Flag(
        "--feedback-max-entries",
        "predictions kept for feedback, at most",
        "100000",
        {"type": positive_int},
    ),
    Flag(
        "--feedback-ttl-seconds",
        "how long a prediction waits for feedback",
        "3600",
        {"type": non_negative_float},
    ),
    Flag(
        "--feedback-dataset-url",
        "append every labelled prediction (features, prediction, actual, variant, model "
        "version, both times) to a Parquet dataset at this fsspec URL: a local folder, "
        "s3://bucket/path, gs://... (empty: off)",
        "",
    ),
    Flag(
        "--feedback-dataset-flush-rows",
        "write a Parquet file as soon as this many labelled predictions wait",
        "1000",
        {"type": positive_int},
    ),
    Flag(
        "--feedback-dataset-flush-seconds",
        "write what waits at least this often",
        "60",
        {"type": positive_float},
    ),
    Flag(
        "--feedback-dataset-max-buffered-rows",
        "labelled predictions kept in memory while storage refuses writes; the oldest beyond "
        "are dropped (and counted)",
        "50000",
        {"type": positive_int},
    ),
    Flag(
        "--max-batch-rows", "rows allowed in one /predict request", "1000", {"type": positive_int}
    ),
    Flag(
        "--max-body-bytes",
        "request bodies larger than this are refused",
        "1048576",
        {"type": positive_int},
    ),
    Flag(
        "--model-threads",
        "CPU threads a prediction may use; one process serves one request at a time, so more "
        "threads mostly contend",
        "1",
        {"type": positive_int},
    ),
    Flag(
        "--batching",
        "coalesce concurrent /predict requests into shared model calls (off: one call each, "
        "on the event loop)",
        "true",
        {"type": boolean},
    ),
    Flag(
        "--batching-max-rows",
        "rows in one model call, at most (a larger request runs alone)",
        BATCHING_MAX_ROWS,
        {"type": positive_int},
    ),
    Flag(
        "--batching-max-wait-seconds",
        "longest a model call is held open for more rows, only while a queue exists",
        BATCHING_MAX_WAIT_SECONDS,
        {"type": non_negative_float},
    ),
    Flag(
        "--batching-queue-rows",
        "rows allowed to wait for the model; beyond it /predict answers 503 with Retry-After",
        BATCHING_QUEUE_ROWS,
        {"type": positive_int},
    ),
    Flag(
        "--metrics-enabled",
        "record metrics (off only to measure their cost)",
        "true",
        {"type": boolean},
    ),
    Flag(
        "--http-metrics",
        "also export the HTTP metrics of prometheus-fastapi-instrumentator "
        f"({', '.join(metric.name for metric in HTTP_METRICS)}), which the curriculum's "
        "dashboards read",
        "true",
        {"type": boolean},
    ),
    Flag(
        "--inject-latency-seconds",
        "TESTS ONLY: extra delay added to every prediction",
        "0",
        {"type": non_negative_float},
    ),
    Flag(
        "--inject-error-ratio",
        "TESTS ONLY: share of predictions that fail as internal errors",
        "0",
        {"type": ratio},
    ),
    Flag(
        "--inject-prediction-bias",
        "TESTS ONLY: constant added to every prediction",
        "0",
        {"type": finite_float},
    ),
)


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelmon-exporter",
        description="Serve a scikit-learn model over HTTP and export its quality and serving "
        f"metrics. Every flag also reads an environment variable: {ENV_PREFIX}<FLAG>, e.g. "
        f"{ENV_PREFIX}MODEL_PATH.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_flags(parser, environ, ENV_PREFIX, FLAGS)
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    parser = build_parser(os.environ if environ is None else environ)
    args = parser.parse_args(argv)
    if args.drift_min_samples > args.drift_window:
        parser.error(
            f"--drift-min-samples ({args.drift_min_samples}) cannot exceed --drift-window "
            f"({args.drift_window})"
        )
    return Settings(**{name: getattr(args, name) for name in Settings.__dataclass_fields__})
