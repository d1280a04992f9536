"""Entry point of the router: `modelmon-router --help`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, ProcessCollector

from modelmon.router.app import create_router_app
from modelmon.router.config import parse_router_settings
from modelmon.router.metrics import RouterMetrics
from modelmon.router.weight import WeightError
from modelmon.serving import configure_logging, serve


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    settings = parse_router_settings(argv)
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    metrics = RouterMetrics(registry, settings.user_id)
    try:
        app = create_router_app(settings, registry, metrics)
    except (OSError, WeightError) as exc:
        print(f"modelmon-router: error: weight file {settings.weight_file}: {exc}", file=sys.stderr)
        return 1
    logging.getLogger("modelmon.router").info(
        "routing %s:%d to stable %s and canary %s, weight from %s",
        settings.host,
        settings.port,
        settings.stable_url,
        settings.canary_url,
        settings.weight_file,
    )
    return serve(app, settings.host, settings.port)


if __name__ == "__main__":
    sys.exit(main())
