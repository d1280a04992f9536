"""The router's metrics: the split as the server sees it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from modelmon import contract
from modelmon.contract import VARIANTS, RouterRoute
from modelmon.metrics import labelled


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry, user_id: str) -> None:
        self._user_id = user_id
        self._requests = labelled(contract.ROUTER_REQUESTS, registry)
        duration = labelled(
            contract.ROUTER_REQUEST_DURATION, registry, buckets=contract.ROUTER_DURATION_BUCKETS
        )
        self.duration = {
            (variant, route): duration.labels(user_id, variant, route)
            for variant in VARIANTS
            for route in RouterRoute
        }
        self.weight = labelled(contract.ROUTER_CANARY_WEIGHT, registry).labels(user_id)
        failovers = labelled(contract.ROUTER_FAILOVERS, registry)
        self.failovers = {
            variant: failovers.labels(user_id, variant, variant.other) for variant in VARIANTS
        }
        self.weight_errors = labelled(contract.ROUTER_WEIGHT_FILE_ERRORS, registry).labels(user_id)
        for variant in VARIANTS:
            self._requests.labels(user_id, variant, RouterRoute.PREDICT, "200")

    def request(self, variant: str, route: RouterRoute, code: int) -> None:
        self._requests.labels(self._user_id, variant, route, str(code)).inc()
