"""Where the end-to-end assertions run: the embedded local stack, or the umbrella on a kind
cluster. Both render the same chart; the tests only talk to a Backend.

local: `helm template` with values/local.yaml, the rendered Deployments run as processes, the
       rendered rules and ServiceMonitors loaded into a real Prometheus, the rendered
       AlertmanagerConfig into a real Alertmanager whose webhook is a receiver in the test.
kind:  `helm upgrade --install` of the platform profile (values/kind.yaml) with
       kube-prometheus-stack; Prometheus, Alertmanager and the model services reached through
       `kubectl port-forward`; Alertmanager delivers to the chart's own retrain webhook
       (modelmon-ops serve-webhook, bearer token from a Secret), whose log shows each alert.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from local_stack import chart, manifests
from local_stack.pods import free_port
from local_stack.processes import Supervisor, wait_until
from local_stack.prometheus import PrometheusClient
from local_stack.stack import DEFAULT_VALUES, LocalStack, StackOptions
from local_stack.toolchain import REPO_ROOT, require
from support import WebhookReceiver

HERE = Path(__file__).parent
USER = "user01"
PARTS = ("stable", "canary", "router")
Alert = dict[str, Any]


class Backend(ABC):
    name: str
    release: str
    namespace: str  # the `namespace` label of the model's series and alerts
    prometheus: PrometheusClient
    patience: float = 1.0  # timeouts are multiplied by this (a cluster is slower)

    @property
    def fullname(self) -> str:
        return f"{self.release}-model-exporter"

    def service(self, part: str) -> str:
        return f"{self.fullname}-{part}"

    @property
    @abstractmethod
    def scraped_services(self) -> set[str]: ...

    @abstractmethod
    def url(self, part: str) -> str:
        """Base URL of the stable or canary exporter, or of the router."""

    @abstractmethod
    def set_weight(self, weight: int) -> None:
        """The canary weight, as a user changes it; returns once the router applies it."""

    @abstractmethod
    def upgrade(self, set_values: Mapping[str, str]) -> None:
        """`helm upgrade --reuse-values --set ...`; returns once the new pods serve."""

    @abstractmethod
    @contextmanager
    def exporter_stopped(self, variant: str) -> Iterator[dict[str, str]]:
        """The variant's exporter taken away; yields the labels ModelExporterDown fires with."""

    @abstractmethod
    @contextmanager
    def exporter_killed(self, variant: str) -> Iterator[None]:
        """SIGKILL (or a forced pod deletion) of the variant's exporter, then recovery."""

    @abstractmethod
    def router_instance(self) -> str:
        """Changes when the router restarts (a pid, a pod uid and its restart count)."""

    @abstractmethod
    def delivered(self, alertname: str, status: str) -> list[Alert]:
        """Alerts Alertmanager delivered to the webhook, as the webhook received them."""

    @abstractmethod
    def logs(self, *parts: str) -> str:
        """Tails of the logs of prometheus, alertmanager, or a model part."""

    @abstractmethod
    def dashboards(self) -> dict[str, dict[str, Any]]:
        """The release's Grafana dashboards (the ConfigMaps the sidecar loads), by file name."""

    def wait_for_weight(self, weight: int, timeout: float) -> None:
        url = self.url("router")

        def applied() -> bool:
            try:
                return requests.get(f"{url}/readyz", timeout=5).json()["canary_weight"] == weight
            except requests.RequestException:
                return False

        wait_until(applied, timeout, describe=f"router weight {weight}")


class LocalBackend(Backend):
    name = "local"
    release = "e2e"
    namespace = "kubeflow-user01"

    def __init__(self) -> None:
        self.webhook = WebhookReceiver()
        options = StackOptions(
            values_files=(DEFAULT_VALUES, HERE / "values-e2e.yaml"),
            set_values={"alerting.webhook.url": self.webhook.url},
            release=self.release,
            namespace=self.namespace,
        )
        self.stack = LocalStack(options)

    def start(self) -> None:
        self.stack.start()
        self.prometheus = self.stack.prometheus
        wait_until(self.stack.targets_healthy, 30, describe="every Prometheus target up")

    def stop(self) -> None:
        self.stack.stop()
        self.webhook.close()

    def pod(self, part: str) -> str:
        return f"{self.service(part)}-0"

    @property
    def scraped_services(self) -> set[str]:
        return {self.service(part) for part in PARTS}

    def url(self, part: str) -> str:
        return self.stack.pod(self.pod(part)).url("http")

    def set_weight(self, weight: int) -> None:
        self.stack.update_config_map(f"{self.fullname}-canary", "weight", str(weight))
        self.wait_for_weight(weight, 10)

    def upgrade(self, set_values: Mapping[str, str]) -> None:
        self.stack.upgrade(set_values)

    @contextmanager
    def exporter_stopped(self, variant: str) -> Iterator[dict[str, str]]:
        process = self.stack.pod(self.pod(variant)).process
        assert process is not None
        process.stop()
        try:
            yield {"service": self.service(variant), "pod": self.pod(variant)}
        finally:
            self.stack.restart_pod(self.pod(variant))

    @contextmanager
    def exporter_killed(self, variant: str) -> Iterator[None]:
        process = self.stack.pod(self.pod(variant)).process
        assert process is not None
        try:
            process.signal(9)
            yield
        finally:
            self.stack.restart_pod(self.pod(variant))

    def router_instance(self) -> str:
        process = self.stack.pod(self.pod("router")).process
        assert process is not None
        return str(process.pid)

    def delivered(self, alertname: str, status: str) -> list[Alert]:
        return self.webhook.alerts(alertname, status)

    def logs(self, *parts: str) -> str:
        names = {self.pod(p) if p in PARTS else p for p in parts}
        tails = [
            f"--- {p.name} ---\n{p.log_tail(15)}"
            for p in self.stack.supervisor.processes
            if not names or p.name in names
        ]
        if not parts or "alertmanager" in parts:
            tails.append(f"--- Alertmanager's alerts ---\n{self._alertmanager_alerts()}")
        return "\n".join(tails)

    def _alertmanager_alerts(self) -> str:
        try:
            alerts = requests.get(f"{self.stack.alertmanager_url}/api/v2/alerts", timeout=5).json()
        except (requests.RequestException, ValueError) as exc:
            return f"(unreadable: {exc})"
        return "\n".join(
            f"{a['labels'].get('alertname')} {a['labels'].get('variant', '')} "
            f"{a['status']['state']} startsAt={a['startsAt']} endsAt={a['endsAt']}"
            for a in alerts
        )

    def dashboards(self) -> dict[str, dict[str, Any]]:
        found = {}
        for config_map in manifests.of_kind(self.stack.objects, "ConfigMap"):
            if config_map["metadata"]["labels"].get("grafana_dashboard") == "1":
                for name, text in config_map["data"].items():
                    found[name] = json.loads(text)
        return found


def alerts_in_webhook_log(text: str, alertname: str, status: str) -> list[Alert]:
    """The alerts a serve-webhook logged (one `alert {json}` line each), as Alertmanager sent
    them: how the kind backend sees deliveries inside the cluster."""
    found = []
    for line in text.splitlines():
        _, marker, payload = line.partition(" alert {")
        if not marker:
            continue
        alert = json.loads("{" + payload)
        if alert["labels"].get("alertname") == alertname and alert["status"] == status:
            found.append(alert)
    return found


def kubeconfig(config: pytest.Config) -> str | None:
    path = config.getoption("kube_config", default=None) or os.environ.get("KUBECONFIG")
    return path if path and Path(path).is_file() else None


def kubectl() -> str:
    beside_helm = require("helm").parent / "kubectl"
    return str(beside_helm) if beside_helm.is_file() else "kubectl"


def reason_to_skip_kind(config: pytest.Config) -> str | None:
    path = kubeconfig(config)
    if path is None:
        return (
            "no Kubernetes cluster: the kind backend needs --kube-config or KUBECONFIG naming "
            "a reachable cluster (make test-kind; see README)"
        )
    if shutil.which("kubectl") is None and not (require("helm").parent / "kubectl").is_file():
        return "kubectl is not installed"
    probe = subprocess.run(
        [kubectl(), "--kubeconfig", path, "version", "--request-timeout=5s"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"the cluster in {path} does not answer: {probe.stderr.strip()[:200]}"
    if chart.stack_chart_source() is None:
        return (
            "kube-prometheus-stack is not vendored: run `helm dependency build "
            "charts/model-monitoring` before the kind backend"
        )
    return None


class KindBackend(Backend):
    name = "kind"
    release = namespace = "monitoring"
    patience = 3.0
    token_secret = "e2e-webhook-token"  # noqa: S105  # nosec B105 - a Secret's name
    install_timeout = "15m"

    def __init__(self, kube_config: str, workdir: Path) -> None:
        self.kube_config = kube_config
        self.supervisor = Supervisor(workdir / "logs")
        self.chart = chart.prepare_umbrella(workdir)
        self._forwards: dict[str, str] = {}

    def run(self, *argv: str) -> str:
        result = subprocess.run(
            [*argv],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "KUBECONFIG": self.kube_config},
        )
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(argv[:4])}: {result.stderr.strip()}")
        return result.stdout

    def kubectl(self, *args: str) -> str:
        return self.run(kubectl(), "-n", self.namespace, *args)

    def helm(self, *args: str) -> str:
        return self.run(str(require("helm")), *args)

    def start(self) -> None:
        manifest = self.run(
            kubectl(),
            "create",
            "namespace",
            self.namespace,
            "--dry-run=client",
            "-o",
            "yaml",
        )
        self._apply(manifest)
        token = self.run(
            kubectl(),
            "-n",
            self.namespace,
            "create",
            "secret",
            "generic",
            self.token_secret,
            f"--from-literal=token={secrets.token_hex(32)}",
            "--dry-run=client",
            "-o",
            "yaml",
        )
        self._apply(token)
        values = [HERE.parent.parent / "values" / "kind.yaml", HERE / "values-kind-e2e.yaml"]
        self.helm(
            "upgrade",
            "--install",
            self.release,
            str(self.chart),
            "-n",
            self.namespace,
            *(arg for v in values for arg in ("--values", str(v))),
            "--wait",
            "--timeout",
            self.install_timeout,
        )
        self.prometheus = PrometheusClient(
            self._forward(f"{self.release}-kube-prometheus-prometheus", 9090)
        )
        wait_until(self.prometheus.ready, 60, describe="Prometheus ready")

    def _apply(self, manifest: str) -> None:
        subprocess.run(
            [kubectl(), "apply", "-f", "-"],
            input=manifest,
            text=True,
            capture_output=True,
            check=True,
            env={**os.environ, "KUBECONFIG": self.kube_config},
        )

    def stop(self) -> None:
        self.supervisor.stop_all()
        self.helm("uninstall", self.release, "-n", self.namespace, "--wait")

    def _forward(self, service: str, port: int) -> str:
        """http://127.0.0.1:<free port> forwarded to the Service's port."""
        local = free_port()
        self.supervisor.start(
            f"port-forward-{service}-{local}",
            [
                kubectl(),
                "--kubeconfig",
                self.kube_config,
                "-n",
                self.namespace,
                "port-forward",
                f"svc/{service}",
                f"{local}:{port}",
            ],
        )
        url = f"http://127.0.0.1:{local}"

        def answers() -> bool:
            try:
                requests.get(url, timeout=2)
            except requests.RequestException:
                return False
            return True

        wait_until(answers, 30, describe=f"port-forward to {service}")
        return url

    def _forget_forwards(self, *parts: str) -> None:
        """A port-forward follows one pod; after a rollout it must be made again."""
        for part in parts or tuple(self._forwards):
            url = self._forwards.pop(part, None)
            if url is None:
                continue
            port = url.rsplit(":", 1)[1]
            for process in list(self.supervisor.processes):
                if process.name.endswith(f"-{port}"):
                    process.stop()
                    self.supervisor.processes.remove(process)

    @property
    def scraped_services(self) -> set[str]:
        return {self.service(part) for part in (*PARTS, "retrain-webhook")}

    def url(self, part: str) -> str:
        if part not in self._forwards:
            self._forwards[part] = self._forward(self.service(part), 8080)
        return self._forwards[part]

    def _rollout(self, part: str) -> None:
        self.kubectl("rollout", "status", f"deploy/{self.service(part)}", "--timeout=300s")

    def set_weight(self, weight: int) -> None:
        self.upgrade({"model-exporter.canary.weight": str(weight)})
        # The kubelet projects the new ConfigMap within its sync period; the router re-reads it.
        self.wait_for_weight(weight, 180)

    def upgrade(self, set_values: Mapping[str, str]) -> None:
        sets = [arg for key, value in set_values.items() for arg in ("--set", f"{key}={value}")]
        self.helm(
            "upgrade",
            self.release,
            str(self.chart),
            "-n",
            self.namespace,
            "--reuse-values",
            *sets,
            "--wait",
            "--timeout",
            "5m",
        )
        for part in PARTS:
            self._rollout(part)
        self._forget_forwards()

    @contextmanager
    def exporter_stopped(self, variant: str) -> Iterator[dict[str, str]]:
        deployment = f"deploy/{self.service(variant)}"
        self.kubectl("scale", deployment, "--replicas=0")
        self._forget_forwards(variant)
        try:
            yield {"service": self.service(variant)}
        finally:
            self.kubectl("scale", deployment, "--replicas=1")
            self._rollout(variant)

    @contextmanager
    def exporter_killed(self, variant: str) -> Iterator[None]:
        selector = f"modelmon.io/variant={variant},app.kubernetes.io/instance={self.release}"
        try:
            self.kubectl("delete", "pod", "-l", selector, "--grace-period=0", "--force")
            yield
        finally:
            self._rollout(variant)
            self._forget_forwards(variant)

    def router_instance(self) -> str:
        return self.kubectl(
            "get",
            "pod",
            "-l",
            f"app.kubernetes.io/component=router,app.kubernetes.io/instance={self.release}",
            "-o",
            "jsonpath={.items[*].metadata.uid}/{.items[*].status.containerStatuses[*].restartCount}",
        )

    def delivered(self, alertname: str, status: str) -> list[Alert]:
        text = self.kubectl("logs", f"deploy/{self.service('retrain-webhook')}", "--tail=5000")
        return alerts_in_webhook_log(text, alertname, status)

    def logs(self, *parts: str) -> str:
        pods = {
            "prometheus": ("prometheus-monitoring-kube-prometheus-prometheus-0", "prometheus"),
            "alertmanager": (
                "alertmanager-monitoring-kube-prometheus-alertmanager-0",
                "alertmanager",
            ),
        }
        tails = []
        for part in parts or ("prometheus", "alertmanager", *PARTS):
            try:
                if part in pods:
                    pod, container = pods[part]
                    text = self.kubectl("logs", pod, "-c", container, "--tail=20")
                else:
                    text = self.kubectl("logs", f"deploy/{self.service(part)}", "--tail=20")
            except AssertionError as error:
                text = str(error)
            tails.append(f"--- {part} ---\n{text}")
        return "\n".join(tails)

    def dashboards(self) -> dict[str, dict[str, Any]]:
        listed = json.loads(
            self.kubectl(
                "get",
                "configmap",
                "-l",
                f"grafana_dashboard=1,app.kubernetes.io/name=model-monitoring,"
                f"app.kubernetes.io/instance={self.release}",
                "-o",
                "json",
            )
        )
        return {
            name: json.loads(text)
            for item in listed["items"]
            for name, text in item.get("data", {}).items()
        }


def start_backend(name: str, config: pytest.Config, workdir: Path) -> Backend:
    backend: LocalBackend | KindBackend
    if name == "local":
        backend = LocalBackend()
    else:
        reason = reason_to_skip_kind(config)
        if reason:
            pytest.skip(reason)
        path = kubeconfig(config)
        assert path is not None
        backend = KindBackend(path, workdir)
    try:
        backend.start()
    except BaseException:
        backend.stop()
        raise
    return backend


__all__ = ["REPO_ROOT", "USER", "Backend", "start_backend"]
