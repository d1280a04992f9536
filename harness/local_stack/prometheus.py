"""A real Prometheus server for the local stack, and a small client of its HTTP API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from local_stack.pods import LOOPBACK
from local_stack.processes import ManagedProcess, Supervisor
from local_stack.toolchain import require


class PrometheusError(Exception):
    """The Prometheus API answered with an error, or not at all."""


def write_config(
    path: Path,
    scrape_configs: Sequence[dict[str, Any]],
    *,
    evaluation_interval: str,
    rule_files: Sequence[Path] = (),
    alertmanager: str | None = None,
) -> None:
    config: dict[str, Any] = {
        "global": {"scrape_interval": "15s", "evaluation_interval": evaluation_interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": list(scrape_configs),
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def start(supervisor: Supervisor, config: Path, data_dir: Path, port: int) -> ManagedProcess:
    binary = require("prometheus")
    argv = [
        str(binary),
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address={LOOPBACK}:{port}",
        "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]
    return supervisor.start("prometheus", argv)


@dataclass(frozen=True)
class PrometheusClient:
    url: str
    timeout: float = 5.0

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            response = requests.get(f"{self.url}{path}", params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PrometheusError(f"Prometheus at {self.url} is not reachable: {exc}") from exc
        try:
            body = response.json()
        except ValueError as exc:
            raise PrometheusError(
                f"{path}: HTTP {response.status_code}, not JSON: {response.text[:200]}"
            ) from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{path}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query", {"query": promql})
        result: list[dict[str, Any]] = data["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        data = self._get("/api/v1/targets", {"state": "active"})
        active: list[dict[str, Any]] = data["activeTargets"]
        return active

    def rules(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = self._get("/api/v1/rules")["groups"]
        return groups

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def runtime_info(self) -> dict[str, Any]:
        info: dict[str, Any] = self._get("/api/v1/status/runtimeinfo")
        return info

    def reload(self) -> None:
        try:
            response = requests.post(f"{self.url}/-/reload", timeout=self.timeout)
        except requests.RequestException as exc:
            raise PrometheusError(f"reload failed: {exc}") from exc
        if response.status_code != 200:
            raise PrometheusError(f"reload failed: HTTP {response.status_code} {response.text}")
