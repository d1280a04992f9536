"""GET /metrics for every server of the package, served by prometheus_client's own ASGI app
(content negotiation between the text and OpenMetrics formats, gzip when the scraper asks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, make_asgi_app


class MetricsEndpoint:
    """An ASGI endpoint for one exact path: Starlette and FastAPI treat an object that is not a
    function as an ASGI app, so `add_route("/metrics", MetricsEndpoint(...))` needs no mount
    (a mount would redirect /metrics to /metrics/ on every scrape)."""

    def __init__(
        self, registry: CollectorRegistry, before_scrape: Callable[[], None] | None = None
    ) -> None:
        self._app = make_asgi_app(registry)
        self._before_scrape = before_scrape

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._before_scrape is not None:
            self._before_scrape()
        await self._app(scope, receive, send)
