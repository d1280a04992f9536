"""The HTTP metrics the curriculum's dashboards read, as prometheus-fastapi-instrumentator names
them (modelmon.contract.HTTP_METRICS), counted by the outermost ASGI layer.

Every request passes here, /predict first among them, so the counting is the event loop's alone:
plain integers and floats in dicts, no locks (as modelmon.loop_histogram does, and for the same
reason). A scrape, on another thread, copies each dict in one C call before reading it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelmon import contract
from modelmon.loop_histogram import Buckets

CONTENT_LENGTH = b"content-length"


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == CONTENT_LENGTH:
            return int(value) if value.isdigit() else 0
    return 0


class _Series:
    """What one (method, handler) pair answered: counts per status code, the sizes' sums and the
    durations."""

    __slots__ = ("durations", "request_bytes", "response_bytes", "statuses")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.request_bytes = 0.0
        self.response_bytes = 0.0
        self.durations = Buckets(contract.HTTP_DURATION_BUCKETS)


class HttpMetrics(Collector):
    """The five families, from one series per (method, handler) seen; observe() on the loop only.
    Status codes are grouped into classes, and sizes summed over methods, at scrape time."""

    def __init__(self, identity: Sequence[str], handlers: Iterable[str] = ()) -> None:
        self._identity = list(identity)
        self._handlers = frozenset(handlers)
        self._series: dict[tuple[str, str], _Series] = {}
        self._highr = Buckets(contract.HTTP_DURATION_HIGHR_BUCKETS)

    def observe(
        self, method: str, path: str, status: int, request: int, response: int, seconds: float
    ) -> None:
        series = self._series.get((method, path)) or self._series_of(method, path)
        statuses = series.statuses
        statuses[status] = statuses.get(status, 0) + 1
        series.request_bytes += request
        series.response_bytes += response
        series.durations.observe(seconds)
        self._highr.observe(seconds)

    def add_handlers(self, paths: Iterable[str]) -> None:
        """Paths the server answers: each its own `handler`; any other is "none"."""
        self._handlers = self._handlers | frozenset(paths)

    def _series_of(self, method: str, path: str) -> _Series:
        """The series a request counts in; only a known method and path are remembered under
        their own names, so a client's made-up ones cannot grow the dict."""
        handler = path if path in self._handlers else contract.HTTP_NO_HANDLER
        label = method if method in contract.HTTP_METHODS else contract.HTTP_OTHER_METHOD
        series = self._series.get((label, handler))
        if series is None:
            series = self._series[label, handler] = _Series()
        return series

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        identity = self._identity
        spec = contract.HTTP_REQUESTS
        requests = CounterMetricFamily(spec.client_name, spec.help, labels=spec.labels)
        spec = contract.HTTP_DURATION
        durations = HistogramMetricFamily(spec.client_name, spec.help, labels=spec.labels)
        sizes: dict[str, list[float]] = {}  # handler: count, request bytes, response bytes
        for (method, handler), series in dict(self._series).items():
            classes: dict[str, int] = {}
            for status, answered in dict(series.statuses).items():
                classes[status_class(status)] = classes.get(status_class(status), 0) + answered
            for label, answered in sorted(classes.items()):
                requests.add_metric([*identity, method, label, handler], float(answered))
            buckets, total = series.durations.snapshot()
            durations.add_metric([*identity, method, handler], buckets, total)
            summed = sizes.setdefault(handler, [0.0, 0.0, 0.0])
            summed[0] += sum(classes.values())
            summed[1] += series.request_bytes
            summed[2] += series.response_bytes
        families: list[Metric] = [requests]
        for spec, index in ((contract.HTTP_REQUEST_SIZE, 1), (contract.HTTP_RESPONSE_SIZE, 2)):
            summary = SummaryMetricFamily(spec.client_name, spec.help, labels=spec.labels)
            for handler, summed in sizes.items():
                summary.add_metric([*identity, handler], int(summed[0]), summed[index])
            families.append(summary)
        spec = contract.HTTP_DURATION_HIGHR
        highr = HistogramMetricFamily(spec.client_name, spec.help, labels=spec.labels)
        buckets, total = self._highr.snapshot()
        highr.add_metric(identity, buckets, total)
        return [*families, highr, durations]


class HttpMetricsMiddleware:
    """Times each HTTP request from its arrival to the end of its response, and counts it."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = [500, 0]  # status, Content-Length: a request that raises before answering

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered[0] = message["status"]
                answered[1] = content_length(message.get("headers", ()))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._metrics.observe(
                scope["method"],
                scope["path"],
                answered[0],
                content_length(scope["headers"]),
                answered[1],
                time.perf_counter() - started,
            )
