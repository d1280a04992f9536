"""The one client of Prometheus's HTTP API, for the operations tools and the test harness, and
the label matchers that pick one user's series."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from modelmon.contract import USER_LABEL
from modelmon.ops.errors import OpsError


class PrometheusError(OpsError):
    """Prometheus did not answer, or answered with an error."""


@dataclass(frozen=True)
class Scope:
    """Whose series: the release's `user_id` label and, optionally, its namespace."""

    user: str
    namespace: str | None = None

    def matchers(self, *extra: str) -> str:
        parts = [f'{USER_LABEL}="{self.user}"']
        if self.namespace:
            parts.append(f'namespace="{self.namespace}"')
        return ",".join([*parts, *extra])

    def owns(self, labels: dict[str, str]) -> bool:
        """Whether a series or an alert with these labels is this user's."""
        if labels.get(USER_LABEL) != self.user:
            return False
        return self.namespace is None or labels.get("namespace") in (None, self.namespace)


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

    def _request(self, method: str, path: str, params: dict[str, str] | None) -> Any:
        try:
            return self._session.request(
                method, f"{self.url}{path}", params=params, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise PrometheusError(
                f"cannot reach Prometheus at {self.url} ({type(exc).__name__}); "
                "check --prometheus-url"
            ) from exc

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = self._request("GET", path, params)
        try:
            body = response.json()
        except ValueError as exc:
            raise PrometheusError(
                f"{self.url}{path} answered HTTP {response.status_code} without JSON: "
                "is this a Prometheus server?"
            ) from exc
        if body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus refused {path}: {body.get('error', 'no reason given')}"
            )
        return body["data"]

    def ready(self) -> bool:
        try:
            return bool(self._request("GET", "/-/ready", None).status_code == 200)
        except PrometheusError:
            return False

    def reload(self) -> None:
        """Re-read the configuration and rule files (needs --web.enable-lifecycle)."""
        response = self._request("POST", "/-/reload", None)
        if response.status_code != 200:
            raise PrometheusError(f"reload failed: HTTP {response.status_code} {response.text}")

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """An instant query, evaluated now or at the Unix time `at`."""
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        data = self._get("/api/v1/query", params)
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        return [Sample(item["metric"], float(item["value"][1])) for item in data["result"]]

    def value(self, promql: str, at: float | None = None) -> float | None:
        """The single value of a query that yields at most one, e.g. sum(...)."""
        samples = self.query(promql, at)
        if len(samples) > 1:
            raise PrometheusError(f"{promql} gave {len(samples)} series where one was expected")
        return samples[0].value if samples else None

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        params = {"query": promql, "start": str(start), "end": str(end), "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params)
        return [
            Series(item["metric"], [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]

    def by_label(self, promql: str, label: str) -> dict[str, float]:
        """One value per value of `label`, e.g. per variant."""
        return {sample.labels.get(label, ""): sample.value for sample in self.query(promql)}

    def rule_groups(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Rule groups as /api/v1/rules gives them; `kind` "alert" or "record" filters."""
        params = {"type": kind} if kind else None
        groups: list[dict[str, Any]] = self._get("/api/v1/rules", params)["groups"]
        return groups

    def alert_rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.rule_groups("alert") for rule in group["rules"]]

    def rule_group_evaluations(self) -> list[float]:
        """When each rule group was last evaluated, as Unix times."""
        return [_unix_time(group.get("lastEvaluation", "")) for group in self.rule_groups()]

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing), with labels, annotations, state and value."""
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self._get("/api/v1/targets", {"state": "active"})[
            "activeTargets"
        ]
        return active

    def runtime_info(self) -> dict[str, Any]:
        info: dict[str, Any] = self._get("/api/v1/status/runtimeinfo")
        return info


def _unix_time(rfc3339: str) -> float:
    """Prometheus's RFC 3339 times carry nanoseconds; Python's parser takes microseconds."""
    parts = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339)
    if parts is None:
        return 0.0  # never evaluated yet
    seconds, fraction, zone = parts.groups()
    micro = (fraction or "0")[:6]
    offset = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{seconds}.{micro:0<6}{offset}").timestamp()
