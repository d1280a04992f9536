"""The router's metrics: the split as the server sees it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

VARIANTS = ("stable", "canary")
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry, user_id: str) -> None:
        self._user_id = user_id
        self._requests = Counter(
            "router_requests",
            "Requests answered by the router, by the variant that served them and status code.",
            ["user_id", "variant", "route", "code"],
            registry=registry,
        )
        duration = Histogram(
            "router_request_duration_seconds",
            "Time from request to answer through the router, in seconds.",
            ["user_id", "variant", "route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.duration = {
            (variant, route): duration.labels(user_id, variant, route)
            for variant in VARIANTS
            for route in ("predict", "feedback")
        }
        self.weight = Gauge(
            "router_canary_weight_ratio",
            "Configured share (0..1) of prediction traffic for the canary.",
            ["user_id"],
            registry=registry,
        ).labels(user_id)
        failovers = Counter(
            "router_failovers",
            "Predictions retried on the other variant after a connection failure.",
            ["user_id", "from_variant", "to_variant"],
            registry=registry,
        )
        self.failovers = {
            variant: failovers.labels(user_id, variant, other)
            for variant, other in (("stable", "canary"), ("canary", "stable"))
        }
        self.weight_errors = Counter(
            "router_weight_file_errors",
            "Times the weight file could not be read; the last good weight stays in force.",
            ["user_id"],
            registry=registry,
        ).labels(user_id)
        for variant in VARIANTS:
            self._requests.labels(user_id, variant, "predict", "200")

    def request(self, variant: str, route: str, code: int) -> None:
        self._requests.labels(self._user_id, variant, route, str(code)).inc()
