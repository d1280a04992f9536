"""Exporter settings from command-line flags, each with an environment-variable default."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "MODELMON_"
VARIANTS = ("stable", "canary")


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    variant: str
    model_path: Path
    user_id: str
    quality_window: int
    accuracy_tolerance: float
    drift_window: int
    drift_min_samples: int
    feedback_max_entries: int
    feedback_ttl_seconds: float
    max_batch_rows: int
    max_body_bytes: int
    metrics_enabled: bool
    model_threads: int
    inject_latency_seconds: float
    inject_error_ratio: float
    inject_prediction_bias: float


def _number(text: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port_number(text: str) -> int:
    value = int(_number(text, int))
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {value}")
    return value


def _ratio(text: str) -> float:
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _finite_float(text: str) -> float:
    return _number(text, float)


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, got {text!r}")


def add_env_option(
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str],
    prefix: str,
    flag: str,
    help_text: str,
    default: str,
    **kwargs: Any,
) -> None:
    """A flag whose default comes from the environment variable <prefix><FLAG>.

    argparse runs string defaults through `type` too, so bad environment values are refused
    with the same message as bad flags.
    """
    env_name = prefix + flag.removeprefix("--").replace("-", "_").upper()
    parser.add_argument(
        flag, default=environ.get(env_name, default), help=f"{help_text} [{env_name}]", **kwargs
    )


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelmon-exporter",
        description="Serve a scikit-learn model over HTTP and export its quality and serving "
        f"metrics. Every flag also reads an environment variable: {ENV_PREFIX}<FLAG>, e.g. "
        f"{ENV_PREFIX}MODEL_PATH.",
    )

    def option(flag: str, help_text: str, default: str, **kwargs: Any) -> None:
        add_env_option(parser, environ, ENV_PREFIX, flag, help_text, default, **kwargs)

    option("--host", "address to listen on", "0.0.0.0")  # noqa: S104  # nosec B104 - the pod IP
    option("--port", "port to listen on", "8080", type=port_number)
    option(
        "--variant", "which side of the canary split this process is", "stable", choices=VARIANTS
    )
    option(
        "--model-path",
        "model artifact (joblib) to serve",
        "/opt/modelmon/models/model-v1.joblib",
        type=Path,
    )
    option("--user-id", "static user_id label of every metric (one per release)", "default")
    option(
        "--quality-window",
        "feedback pairs behind the MAE/R²/accuracy gauges",
        "500",
        type=positive_int,
    )
    option(
        "--accuracy-tolerance",
        "a prediction is accurate within this distance of the truth",
        "0.5",
        type=non_negative_float,
    )
    option("--drift-window", "input rows behind the drift scores", "1000", type=positive_int)
    option(
        "--drift-min-samples",
        "rows the drift window needs before it scores (PSI over fewer is noise)",
        "200",
        type=positive_int,
    )
    option(
        "--feedback-max-entries",
        "predictions kept for feedback, at most",
        "100000",
        type=positive_int,
    )
    option(
        "--feedback-ttl-seconds",
        "how long a prediction waits for feedback",
        "3600",
        type=non_negative_float,
    )
    option("--max-batch-rows", "rows allowed in one /predict request", "1000", type=positive_int)
    option(
        "--max-body-bytes",
        "request bodies larger than this are refused",
        "1048576",
        type=positive_int,
    )
    option(
        "--model-threads",
        "CPU threads a prediction may use; one process serves one request at a time, so more "
        "threads mostly contend",
        "1",
        type=positive_int,
    )
    option(
        "--metrics-enabled",
        "record metrics (off only to measure their cost)",
        "true",
        type=_boolean,
    )
    option(
        "--inject-latency-seconds",
        "TESTS ONLY: extra delay added to every prediction",
        "0",
        type=non_negative_float,
    )
    option(
        "--inject-error-ratio",
        "TESTS ONLY: share of predictions that fail as internal errors",
        "0",
        type=_ratio,
    )
    option(
        "--inject-prediction-bias",
        "TESTS ONLY: constant added to every prediction",
        "0",
        type=_finite_float,
    )
    return parser


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    parser = build_parser(os.environ if environ is None else environ)
    args = parser.parse_args(argv)
    if args.variant not in VARIANTS:  # choices are not checked on environment defaults
        parser.error(f"--variant: must be one of {', '.join(VARIANTS)}, got {args.variant!r}")
    if args.drift_min_samples > args.drift_window:
        parser.error(
            f"--drift-min-samples ({args.drift_min_samples}) cannot exceed --drift-window "
            f"({args.drift_window})"
        )
    return Settings(**{name: getattr(args, name) for name in Settings.__dataclass_fields__})
