"""Several users on one monitoring stack, as the lab runs them: the platform's release (its
Prometheus and Alertmanager), and one attach release per user in the user's namespace. The
isolation tests (test_tenants.py) talk to a Tenancy only; each backend installs the same chart
with the same values.

local: the local stack, the platform's release first (values/local.yaml), then each user's.
kind:  the kind backend's platform release ("monitoring", with kube-prometheus-stack), then each
       user's with `helm install` into kubeflow-<user>.

Each user's quality alerts go to the user's own retrain webhook (dry run); its log holds every
alert Alertmanager delivered to it, and its /metrics the decisions it took.
"""

from __future__ import annotations

import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

import requests
import yaml
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException
from pytest_helm_charts.k8s.namespace import ensure_namespace_exists

from backends import HERE, KindBackend, alerts_in_webhook_log
from local_stack import chart, manifests
from local_stack.stack import DEFAULT_VALUES, LocalStack, StackOptions, attached
from modelmon.ops.prometheus import PrometheusAPI
from modelmon.ops.users import lab_namespace

PLATFORM = "monitoring"
TENANT_VALUES = HERE / "values-tenants.yaml"
TOKEN_SECRET = "tenant-webhook-token"  # noqa: S105  # nosec B105 - a Secret's name
Alert = dict[str, Any]


def release_values(user: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The user's own values on top of values-tenants.yaml: their id, and any override."""
    return chart.merge({"model-exporter": {"userId": user}}, overrides)


class Tenancy(ABC):
    name: str
    prometheus: PrometheusAPI
    patience: float = 1.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tokens: dict[str, str] = {}

    def values_file(self, user: str, overrides: Mapping[str, Any]) -> Path:
        path = self.workdir / f"{user}-values.yaml"
        path.write_text(yaml.safe_dump(release_values(user, overrides)))
        return path

    @abstractmethod
    def install(self, user: str, overrides: Mapping[str, Any]) -> None:
        """`helm install <user> -n kubeflow-<user>`, attached; returns once its pods serve."""

    @abstractmethod
    def uninstall(self, user: str) -> None:
        """`helm uninstall <user>`; returns once its pods are gone."""

    @abstractmethod
    def url(self, user: str, part: str) -> str:
        """Base URL of one of the user's Services (router, stable, canary, retrain-webhook)."""

    @abstractmethod
    def webhook_log(self, user: str) -> str:
        """The log of the user's retrain webhook."""

    @abstractmethod
    def dashboards(self, user: str) -> dict[str, dict[str, Any]]:
        """The user's dashboards, as the Grafana sidecar loads them."""

    @abstractmethod
    def stop(self) -> None: ...

    def delivered(self, user: str, alertname: str, status: str = "firing") -> list[Alert]:
        return alerts_in_webhook_log(self.webhook_log(user), alertname, status)

    def every_delivery(self, user: str) -> list[Alert]:
        """Every alert the user's receiver got, of any name and status."""
        found = []
        for line in self.webhook_log(user).splitlines():
            _, marker, payload = line.partition(" alert {")
            if marker:
                found.append(json.loads("{" + payload))
        return found

    def decisions(self, user: str) -> dict[str, float]:
        """The user's retrain webhook's decisions so far, by action."""
        text = requests.get(f"{self.url(user, 'retrain-webhook')}/metrics", timeout=5).text
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("modelmon_ops_retrain_decisions_total{"):
                action = line.split('action="', 1)[1].split('"', 1)[0]
                found[action] = float(line.rsplit(" ", 1)[1])
        return found


class LocalTenancy(Tenancy):
    name = "local"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        options = StackOptions(release=PLATFORM, namespace=PLATFORM, workdir=workdir / "stack")
        self.stack = LocalStack(options)

    def start(self) -> None:
        self.stack.start()
        self.prometheus = self.stack.prometheus

    def install(self, user: str, overrides: Mapping[str, Any]) -> None:
        self.tokens[user] = secrets.token_hex(32)
        self.stack.install(
            attached(
                user,
                self.stack.platform,
                values_files=(DEFAULT_VALUES, TENANT_VALUES, self.values_file(user, overrides)),
                secrets={TOKEN_SECRET: {"token": self.tokens[user]}},
            )
        )

    def uninstall(self, user: str) -> None:
        self.stack.uninstall(user)

    def url(self, user: str, part: str) -> str:
        return self.stack.service_url(
            f"{user}-model-exporter-{part}", namespace=lab_namespace(user)
        )

    def webhook_log(self, user: str) -> str:
        texts = []
        for pod in self.stack.pods_of(f"{user}-model-exporter-retrain-webhook"):
            log = self.stack.workdir / "logs" / f"{pod.name}.log"
            texts.append(log.read_text() if log.exists() else "")
        return "\n".join(texts)

    def dashboards(self, user: str) -> dict[str, dict[str, Any]]:
        found = {}
        for config_map in manifests.of_kind(self.stack.releases[user].objects, "ConfigMap"):
            if config_map["metadata"]["labels"].get("grafana_dashboard") == "1":
                for name, text in config_map["data"].items():
                    found[name] = json.loads(text)
        return found

    def stop(self) -> None:
        self.stack.stop()


class KindTenancy(Tenancy):
    """Users attached to the kind backend's platform release, each installed with helm."""

    name = "kind"
    patience = 3.0

    def __init__(self, backend: KindBackend, workdir: Path) -> None:
        super().__init__(workdir)
        self.backend = backend
        self.prometheus = backend.prometheus
        self.installed: list[str] = []
        self._urls: dict[tuple[str, str], str] = {}

    def start(self) -> None:
        self.prometheus = self.backend.prometheus

    def install(self, user: str, overrides: Mapping[str, Any]) -> None:
        namespace = lab_namespace(user)
        ensure_namespace_exists(self.backend.kube, namespace)
        self.tokens[user] = secrets.token_hex(32)
        secret = k8s_client.V1Secret(
            metadata=k8s_client.V1ObjectMeta(name=TOKEN_SECRET),
            string_data={"token": self.tokens[user]},
        )
        try:
            self.backend.core.create_namespaced_secret(namespace, secret)
        except ApiException as error:
            if error.status != HTTPStatus.CONFLICT:
                raise
            self.backend.core.replace_namespaced_secret(TOKEN_SECRET, namespace, secret)
        self.backend.helm(
            "upgrade",
            "--install",
            user,
            str(self.backend.chart),
            "-n",
            namespace,
            "--values",
            str(TENANT_VALUES),
            "--values",
            str(self.values_file(user, overrides)),
            "--wait",
            "--timeout",
            "5m",
        )
        self.installed.append(user)

    def uninstall(self, user: str) -> None:
        self.backend.helm("uninstall", user, "-n", lab_namespace(user), "--wait")
        self.installed.remove(user)
        for key in [k for k in self._urls if k[0] == user]:
            del self._urls[key]

    def url(self, user: str, part: str) -> str:
        key = (user, part)
        if key not in self._urls:
            service = f"{user}-model-exporter-{part}"
            self._urls[key] = self.backend._forward(service, 8080, lab_namespace(user))
        return self._urls[key]

    def webhook_log(self, user: str) -> str:
        namespace = lab_namespace(user)
        pods = self.backend.core.list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/component=retrain-webhook"
        )
        return "\n".join(
            self.backend._log(pod.metadata.name, tail=5000, namespace=namespace)
            for pod in pods.items
            if pod.status.phase == "Running"
        )

    def dashboards(self, user: str) -> dict[str, dict[str, Any]]:
        listed = self.backend.core.list_namespaced_config_map(
            lab_namespace(user), label_selector="grafana_dashboard=1"
        )
        return {
            name: json.loads(text)
            for item in listed.items
            for name, text in (item.data or {}).items()
        }

    def stop(self) -> None:
        for user in list(self.installed):
            self.uninstall(user)


def start_tenancy(name: str, backend: KindBackend | None, workdir: Path) -> Tenancy:
    tenancy: LocalTenancy | KindTenancy
    if name == "local":
        tenancy = LocalTenancy(workdir)
    else:
        assert backend is not None
        tenancy = KindTenancy(backend, workdir)
    try:
        tenancy.start()
    except BaseException:
        tenancy.stop()
        raise
    return tenancy


__all__ = ["PLATFORM", "Tenancy", "start_tenancy"]
