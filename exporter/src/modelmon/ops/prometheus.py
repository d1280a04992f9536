"""Prometheus HTTP API client for the tools, and the label matchers that pick one user's series."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from modelmon.ops.errors import OpsError


@dataclass(frozen=True)
class Scope:
    """Whose series: the release's `user_id` label and, optionally, its namespace."""

    user: str
    namespace: str | None = None

    def matchers(self, *extra: str) -> str:
        parts = [f'user_id="{self.user}"']
        if self.namespace:
            parts.append(f'namespace="{self.namespace}"')
        return ",".join([*parts, *extra])


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]


class PrometheusAPI:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            response = self._session.get(f"{self.url}{path}", params=params, timeout=self._timeout)
        except requests.RequestException as exc:
            raise OpsError(
                f"cannot reach Prometheus at {self.url} ({type(exc).__name__}); "
                "check --prometheus-url"
            ) from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise OpsError(
                f"{self.url}{path} answered HTTP {response.status_code} without JSON: "
                "is this a Prometheus server?"
            ) from exc
        if body.get("status") != "success":
            raise OpsError(f"Prometheus refused {path}: {body.get('error', 'no reason given')}")
        return body["data"]

    def query(self, promql: str) -> list[Sample]:
        data = self._get("/api/v1/query", {"query": promql})
        return [
            Sample(item["metric"], float(item["value"][1]))
            for item in data["result"]
            if data["resultType"] == "vector"
        ]

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        params = {"query": promql, "start": str(start), "end": str(end), "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params)
        return [
            Series(item["metric"], [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]

    def alert_rules(self) -> list[dict[str, Any]]:
        groups = self._get("/api/v1/rules", {"type": "alert"})["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def rule_group_evaluations(self) -> list[float]:
        """When each rule group was last evaluated, as Unix times."""
        groups = self._get("/api/v1/rules")["groups"]
        return [_unix_time(group.get("lastEvaluation", "")) for group in groups]

    def by_label(self, promql: str, label: str) -> dict[str, float]:
        """One value per value of `label`, e.g. per variant."""
        return {sample.labels.get(label, ""): sample.value for sample in self.query(promql)}


def _unix_time(rfc3339: str) -> float:
    """Prometheus's RFC 3339 times carry nanoseconds; Python's parser takes microseconds."""
    parts = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339)
    if parts is None:
        return 0.0  # never evaluated yet
    seconds, fraction, zone = parts.groups()
    micro = (fraction or "0")[:6]
    offset = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{seconds}.{micro:0<6}{offset}").timestamp()
