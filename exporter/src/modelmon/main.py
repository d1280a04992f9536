"""Entry point of the exporter: `modelmon-exporter --help`."""

from __future__ import annotations

import gc
import logging
import socket
import sys
import uuid
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from threadpoolctl import threadpool_limits

from modelmon import artifact, contract
from modelmon.api import create_app
from modelmon.config import Settings, parse_settings
from modelmon.contract import DatasetOutcome
from modelmon.drift import DriftWindow
from modelmon.feedback_store import FeedbackStore
from modelmon.metrics import Identity, ServingMetrics, WindowCollector
from modelmon.quality import QualityWindow
from modelmon.service import ModelService
from modelmon.serving import configure_logging, serve

if TYPE_CHECKING:
    from modelmon.feedback_dataset import FeedbackDataset

log = logging.getLogger("modelmon")


def build_dataset(
    settings: Settings, model: artifact.ModelArtifact, metrics: ServingMetrics | None
) -> FeedbackDataset | None:
    if not settings.feedback_dataset_url:
        return None
    # here, not at the top: pyarrow costs 40 MiB of memory that an exporter without it keeps
    from modelmon.feedback_dataset import FeedbackDataset

    dataset = partial(
        FeedbackDataset,
        settings.feedback_dataset_url,
        model.feature_names,
        writer=f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
        flush_rows=settings.feedback_dataset_flush_rows,
        flush_seconds=settings.feedback_dataset_flush_seconds,
        max_buffered_rows=settings.feedback_dataset_max_buffered_rows,
    )
    if metrics is None:
        return dataset()
    return dataset(
        on_written=metrics.dataset_rows[DatasetOutcome.WRITTEN].inc,
        on_dropped=metrics.dataset_rows[DatasetOutcome.DROPPED].inc,
        on_failed=metrics.dataset_write_failures.inc,
    )


def build_service(
    settings: Settings, model: artifact.ModelArtifact
) -> tuple[ModelService, CollectorRegistry]:
    registry = CollectorRegistry()
    quality = QualityWindow(settings.quality_window, settings.accuracy_tolerance)
    drift = DriftWindow(model.reference, settings.drift_window, settings.drift_min_samples)
    store = FeedbackStore(settings.feedback_max_entries, settings.feedback_ttl_seconds)
    metrics: ServingMetrics | None = None
    if settings.metrics_enabled:
        identity = Identity(settings.variant, model.version, settings.user_id)
        metrics = ServingMetrics(registry, identity)
        described = (model.name, model.algorithm, model.trained_at)
        metrics.info.info(dict(zip(contract.MODEL_INFO.info_keys, described, strict=True)))
        registry.register(WindowCollector(identity, quality, drift, store))
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    dataset = build_dataset(settings, model, metrics)
    return ModelService(settings, model, metrics, quality, drift, store, dataset), registry


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    settings = parse_settings(argv)
    try:
        model = artifact.load(settings.model_path)
    except artifact.ArtifactError as exc:
        print(f"modelmon-exporter: error: {exc}", file=sys.stderr)
        return 1
    # OpenMP/BLAS pools sized to the machine would make every single-row predict spin up and
    # contend for threads; one pod serves one request at a time and scales by replicas.
    threadpool_limits(limits=settings.model_threads)
    try:
        service, registry = build_service(settings, model)
        if service.dataset is not None:
            service.dataset.start()
    except (ImportError, ValueError, OSError) as exc:
        print(
            f"modelmon-exporter: error: feedback dataset {settings.feedback_dataset_url}: {exc}",
            file=sys.stderr,
        )
        return 1
    app = create_app(service, registry)
    log.info(
        "serving %s v%s (%s) as %s for user_id=%s on %s:%d",
        model.name,
        model.version,
        model.algorithm,
        settings.variant,
        settings.user_id,
        settings.host,
        settings.port,
    )

    def drain() -> None:
        app.state.draining = True

    # What is loaded now (the model, the libraries) lives as long as the process: out of the
    # collector's way, so its full collections walk only what requests create.
    gc.freeze()
    return serve(app, settings.host, settings.port, on_exit=drain)


if __name__ == "__main__":
    sys.exit(main())
