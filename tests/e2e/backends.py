"""Where the end-to-end assertions run: the embedded local stack, or the umbrella on a kind
cluster. Both render the same chart; the tests only talk to a Backend.

local: `helm template` with values/local.yaml, the rendered Deployments run as processes, the
       rendered rules and ServiceMonitors loaded into a real Prometheus, the rendered
       AlertmanagerConfig into a real Alertmanager whose webhook is a receiver in the test.
kind:  `helm upgrade --install` of the platform profile (values/kind.yaml) with
       kube-prometheus-stack, rollouts awaited with pytest-helm-charts; Prometheus and the
       model services reached through `kubectl port-forward`; Alertmanager delivers to the
       chart's own retrain webhook (modelmon-ops serve-webhook, bearer token from a Secret),
       whose log shows each alert.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar

import pykube
import pytest
import requests
import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from prometheus_client.parser import text_string_to_metric_families
from pytest_helm_charts.clusters import ExistingCluster
from pytest_helm_charts.k8s.deployment import wait_for_deployments_to_run
from pytest_helm_charts.k8s.namespace import ensure_namespace_exists
from pytest_helm_charts.k8s.stateful_set import wait_for_stateful_sets_to_run

from local_stack import chart, manifests
from local_stack.pods import free_port
from local_stack.processes import Supervisor, wait_until
from local_stack.stack import DEFAULT_VALUES, LocalStack, StackOptions
from local_stack.toolchain import REPO_ROOT, require
from modelmon.ops.prometheus import PrometheusAPI
from support import WebhookReceiver

HERE = Path(__file__).parent
USER = "user01"
PARTS = ("stable", "canary", "router")
RETRAIN_TOKEN_SECRET = "e2e-webhook-token"  # noqa: S105  # nosec B105 - a Secret's name
# kube-prometheus-stack's fullname for the release "monitoring" (it truncates to 26 characters)
STACK = "monitoring-kube-prometheus"
Alert = dict[str, Any]
NOTIFICATION_COUNTS = {
    f"prometheus_notifications_{name}"
    for name in ("sent_total", "dropped_total", "errors_total", "alertmanagers_discovered")
}


class Backend(ABC):
    name: str
    release: str
    namespace: str  # the `namespace` label of the model's series and alerts
    prometheus: PrometheusAPI
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

    @contextmanager
    def exporter_stopped(self, variant: str) -> Iterator[dict[str, str]]:
        """The variant's exporter taken away (its Deployment scaled to 0); yields the labels
        ModelExporterDown fires with, through its absent() branch."""
        with self.scaled_to_zero(variant):
            yield {"service": self.service(variant)}

    @abstractmethod
    @contextmanager
    def exporter_killed(self, variant: str) -> Iterator[None]:
        """A forced deletion of the variant's exporter pod (no grace), then its replacement."""

    @abstractmethod
    def router_instance(self) -> str:
        """Changes when the router restarts (a pid, a pod uid and its restart count)."""

    @abstractmethod
    def crash(self, part: str) -> None:
        """SIGKILL of the part's container; its kubelet restarts it, with back-off."""

    @abstractmethod
    def restarts(self, part: str) -> int:
        """How often the kubelet has restarted the part's container."""

    @abstractmethod
    @contextmanager
    def scaled_to_zero(self, part: str) -> Iterator[None]:
        """The part's Deployment scaled to 0, and back to 1 (ready) after the block."""

    @abstractmethod
    def restart_prometheus(self) -> None:
        """Prometheus stopped gracefully and started again on its own data; returns once ready."""

    @abstractmethod
    def restart_alertmanager(self) -> None:
        """Alertmanager stopped gracefully and started again on its own data (its notification
        log included); returns once ready."""

    @abstractmethod
    def alertmanager_alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's active alerts (its API v2)."""

    @abstractmethod
    def retrain_webhook_alerts(self, alertname: str, status: str) -> list[Alert]:
        """The alerts the release's retrain webhook received, from its log."""

    @abstractmethod
    def retrain_webhook_token(self) -> str:
        """The bearer token the retrain webhook wants."""

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
        self.token = secrets.token_hex(32)
        options = StackOptions(
            values_files=(DEFAULT_VALUES, HERE / "values-e2e.yaml"),
            set_values={
                "alerting.webhook.url": self.webhook.url,
                # the release's own retrain webhook, in dry run, as on the kind backend
                "model-exporter.retrainWebhook.enabled": "true",
                "model-exporter.retrainWebhook.tokenSecret.name": RETRAIN_TOKEN_SECRET,
            },
            release=self.release,
            namespace=self.namespace,
            secrets={RETRAIN_TOKEN_SECRET: {"token": self.token}},
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
        [pod] = self.stack.pods_of(self.service(part))
        return pod.name

    @property
    def scraped_services(self) -> set[str]:
        return {self.service(part) for part in (*PARTS, "retrain-webhook")}

    def url(self, part: str) -> str:
        return self.stack.service_url(self.service(part))

    def set_weight(self, weight: int) -> None:
        self.stack.update_config_map(f"{self.fullname}-canary", "weight", str(weight))
        self.wait_for_weight(weight, 10)

    def upgrade(self, set_values: Mapping[str, str]) -> None:
        self.stack.upgrade(set_values)

    @contextmanager
    def exporter_killed(self, variant: str) -> Iterator[None]:
        """A forced deletion of the variant's pod (SIGKILL, no grace), as on the kind backend;
        its Deployment replaces it."""
        replacement = self.stack.delete_pod(self.pod(variant), grace=0)
        try:
            yield
        finally:
            self.stack.wait_ready([replacement])

    def router_instance(self) -> str:
        name = self.pod("router")
        process = self.stack.pod(name).process
        assert process is not None
        return f"{process.pid}/{self.stack.kubelet.status(name).restarts}"

    def crash(self, part: str) -> None:
        process = self.stack.pod(self.pod(part)).process
        assert process is not None, f"{part} is not running"
        process.signal(9)

    def restarts(self, part: str) -> int:
        return self.stack.kubelet.status(self.pod(part)).restarts

    @contextmanager
    def scaled_to_zero(self, part: str) -> Iterator[None]:
        self.stack.scale(self.service(part), 0)
        try:
            yield
        finally:
            self.stack.scale(self.service(part), 1)

    def restart_prometheus(self) -> None:
        self.stack.restart_prometheus()
        self.prometheus = self.stack.prometheus

    def restart_alertmanager(self) -> None:
        self.stack.restart_alertmanager()

    def alertmanager_alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = requests.get(
            f"{self.stack.alertmanager_url}/api/v2/alerts", timeout=5
        ).json()
        return alerts

    def retrain_webhook_alerts(self, alertname: str, status: str) -> list[Alert]:
        log = self.stack.workdir / "logs" / f"{self.pod('retrain-webhook')}.log"
        text = log.read_text() if log.exists() else ""
        return alerts_in_webhook_log(text, alertname, status)

    def retrain_webhook_token(self) -> str:
        return self.token

    def delivered(self, alertname: str, status: str) -> list[Alert]:
        return self.webhook.alerts(alertname, status)

    def logs(self, *parts: str) -> str:
        names = {self.pod(p) if p in (*PARTS, "retrain-webhook") else p for p in parts}
        tails = [
            f"--- {p.name} ---\n{p.log_tail(15)}"
            for p in self.stack.supervisor.processes
            if not names or p.name in names
        ]
        if not parts or "alertmanager" in parts:
            tails.append(f"--- Alertmanager's alerts ---\n{self._alertmanager_alerts()}")
            tails.append(f"--- Prometheus's notifications ---\n{self._notification_counts()}")
        return "\n".join(tails)

    def _notification_counts(self) -> str:
        """What Prometheus sent Alertmanager, dropped or failed to send: a resolution that is
        dropped is only sent again after Prometheus's resend delay (1 minute)."""
        try:
            text = requests.get(f"{self.prometheus.url}/metrics", timeout=5).text
        except requests.RequestException as exc:
            return f"(unreadable: {exc})"
        return "\n".join(
            f"{sample.name} {sample.value:g}"
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name in NOTIFICATION_COUNTS
        )

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


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200]


def reason_to_skip_kind(config: pytest.Config) -> str | None:
    path = kubeconfig(config)
    if path is None:
        return (
            "no Kubernetes cluster: the kind backend needs --kube-config or KUBECONFIG naming "
            "a reachable cluster (make test-kind; see README)"
        )
    if shutil.which(kubectl()) is None:
        return "kubectl is not installed (the kind backend port-forwards with it)"
    try:
        api = k8s_config.new_client_from_config(path)
    except (ConfigException, yaml.YAMLError, TypeError, AttributeError) as error:
        return f"{path} is not a kubeconfig: {one_line(error)}"
    try:
        k8s_client.VersionApi(api).get_code(_request_timeout=5)
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
        return f"the cluster in {path} does not answer: {one_line(error)}"
    if chart.stack_chart_source() is None:
        return (
            "kube-prometheus-stack is not vendored: run `helm dependency build "
            "charts/model-monitoring` before the kind backend"
        )
    return None


class KindBackend(Backend):
    """The cluster comes from pytest-helm-charts (the `ExistingCluster` its `kube_cluster`
    fixture yields; that fixture is module-scoped and this backend lives for the session) and
    its wait helpers; changes and reads go through the Kubernetes client; helm and
    `kubectl port-forward` run as processes."""

    name = "kind"
    release = namespace = "monitoring"
    patience = 3.0
    token_secret = RETRAIN_TOKEN_SECRET
    install_timeout = "15m"
    rollout_timeout = 300

    def __init__(self, kube_config: str, workdir: Path) -> None:
        self.kube_config = kube_config
        self.cluster = ExistingCluster(kube_config)
        self.supervisor = Supervisor(workdir / "logs")
        self.chart = chart.prepare_umbrella(workdir)
        self._forwards: dict[str, str] = {}
        api = k8s_config.new_client_from_config(kube_config)
        self.core = k8s_client.CoreV1Api(api)
        self.apps = k8s_client.AppsV1Api(api)

    @property
    def kube(self) -> pykube.HTTPClient:
        assert self.cluster.kube_client is not None, "the cluster is not connected"
        return self.cluster.kube_client

    def helm(self, *args: str) -> str:
        result = subprocess.run(
            [str(require("helm")), *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "KUBECONFIG": self.kube_config},
        )
        if result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args[:2])}: {result.stderr.strip()}")
        return result.stdout

    def start(self) -> None:
        self.cluster.create()
        ensure_namespace_exists(self.kube, self.namespace)
        self._create_token_secret()
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
        wait_for_stateful_sets_to_run(
            self.kube,
            [f"prometheus-{STACK}-prometheus", f"alertmanager-{STACK}-alertmanager"],
            self.namespace,
            self.rollout_timeout,
            missing_ok=True,
        )
        self._wait_for_rollout(*PARTS, "retrain-webhook")
        self.prometheus = PrometheusAPI(self._forward(f"{STACK}-prometheus", 9090))
        wait_until(self.prometheus.ready, 60, describe="Prometheus ready")

    def _create_token_secret(self) -> None:
        """The bearer token Alertmanager and the webhook share; kept if a run left one."""
        secret = k8s_client.V1Secret(
            metadata=k8s_client.V1ObjectMeta(name=self.token_secret),
            string_data={"token": secrets.token_hex(32)},
        )
        try:
            self.core.create_namespaced_secret(self.namespace, secret)
        except ApiException as error:
            if error.status != HTTPStatus.CONFLICT:
                raise

    def stop(self) -> None:
        self.supervisor.stop_all()
        try:
            self.helm(
                "uninstall", self.release, "-n", self.namespace, "--wait", "--ignore-not-found"
            )
        finally:
            self.cluster.destroy()

    def _forward(self, service: str, port: int, namespace: str | None = None) -> str:
        """http://127.0.0.1:<free port> forwarded to the Service's port."""
        local = free_port()
        self.supervisor.start(
            f"port-forward-{service}-{local}",
            [
                kubectl(),
                "--kubeconfig",
                self.kube_config,
                "-n",
                namespace or self.namespace,
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

    def _wait_for_rollout(self, *parts: str) -> None:
        wait_for_deployments_to_run(
            self.kube,
            [self.service(part) for part in parts],
            self.namespace,
            self.rollout_timeout,
        )

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
        self._wait_for_rollout(*PARTS)
        self._forget_forwards()

    def _scale(self, part: str, replicas: int) -> None:
        self.apps.patch_namespaced_deployment_scale(
            self.service(part), self.namespace, {"spec": {"replicas": replicas}}
        )

    @contextmanager
    def exporter_killed(self, variant: str) -> Iterator[None]:
        try:
            self.core.delete_collection_namespaced_pod(
                self.namespace,
                label_selector=self._selector(variant),
                grace_period_seconds=0,
            )
            yield
        finally:
            self._wait_for_rollout(variant)
            self._forget_forwards(variant)

    # The processes of each part, as shell patterns (no spaces) over their command lines.
    PROCESSES: ClassVar[dict[str, str]] = {
        "stable": "*modelmon-exporter*--variant=stable*",
        "canary": "*modelmon-exporter*--variant=canary*",
        "router": "*modelmon-router*",
        "retrain-webhook": "*modelmon-ops*serve-webhook*",
        "prometheus": "/bin/prometheus*--config.file*",
        "alertmanager": "/bin/alertmanager*--config.file*",
    }

    def _signal_in_node(self, part: str, signal_name: str) -> None:
        """A signal to a pod's process from the kind node (a Docker container): from outside the
        pod's PID namespace, so even SIGKILL reaches its PID 1, as a crash would."""
        docker = shutil.which("docker")
        if docker is None:
            raise AssertionError("the kind backend needs docker to signal a pod's process")
        [node] = self.core.list_node().items
        script = (
            'for p in /proc/[0-9]*; do [ "${p#/proc/}" = "$$" ] && continue; '
            'c=$(tr "\\0" " " < "$p/cmdline" 2>/dev/null); '
            f'case "$c" in {self.PROCESSES[part]}) kill -{signal_name} "${{p#/proc/}}";; esac; done'
        )
        subprocess.run([docker, "exec", node.metadata.name, "sh", "-c", script], check=True)

    def crash(self, part: str) -> None:
        self._signal_in_node(part, "KILL")

    def restarts(self, part: str) -> int:
        return sum(
            status.restart_count
            for pod in self._pods(part)
            for status in pod.status.container_statuses or []
        )

    @contextmanager
    def scaled_to_zero(self, part: str) -> Iterator[None]:
        self._scale(part, 0)
        self._forget_forwards(part)
        try:
            yield
        finally:
            self._scale(part, 1)
            self._wait_for_rollout(part)

    def _restart_stack_pod(self, part: str, stateful_set: str) -> None:
        """SIGTERM to the server: it stops gracefully, its container restarts on its emptyDir."""
        pod = f"{stateful_set}-0"

        def restart_count() -> int:
            status = self.core.read_namespaced_pod(pod, self.namespace).status
            return sum(s.restart_count for s in status.container_statuses or [])

        before = restart_count()
        self._signal_in_node(part, "TERM")
        wait_until(lambda: restart_count() > before, 120, describe=f"{pod} restarted")
        wait_for_stateful_sets_to_run(
            self.kube, [stateful_set], self.namespace, self.rollout_timeout
        )

    def restart_prometheus(self) -> None:
        self._restart_stack_pod("prometheus", f"prometheus-{STACK}-prometheus")
        self.prometheus = PrometheusAPI(self._forward(f"{STACK}-prometheus", 9090))
        wait_until(self.prometheus.ready, 60, describe="Prometheus ready")

    def restart_alertmanager(self) -> None:
        self._restart_stack_pod("alertmanager", f"alertmanager-{STACK}-alertmanager")

    def alertmanager_alerts(self) -> list[dict[str, Any]]:
        url = self._forward(f"{STACK}-alertmanager", 9093)
        alerts: list[dict[str, Any]] = requests.get(f"{url}/api/v2/alerts", timeout=10).json()
        return alerts

    def retrain_webhook_alerts(self, alertname: str, status: str) -> list[Alert]:
        return self.delivered(alertname, status)

    def retrain_webhook_token(self) -> str:
        secret = self.core.read_namespaced_secret(self.token_secret, self.namespace)
        return base64.b64decode(secret.data["token"]).decode()

    def _selector(self, part: str) -> str:
        """The label selector of the part's Deployment, as the cluster holds it."""
        deployment = self.apps.read_namespaced_deployment(self.service(part), self.namespace)
        labels = deployment.spec.selector.match_labels or {}
        return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))

    def _pods(self, part: str) -> list[Any]:
        listed = self.core.list_namespaced_pod(self.namespace, label_selector=self._selector(part))
        return list(listed.items)

    def router_instance(self) -> str:
        return " ".join(
            f"{pod.metadata.uid}/{status.restart_count}"
            for pod in self._pods("router")
            for status in pod.status.container_statuses or []
        )

    def _log(
        self, pod: str, container: str | None = None, tail: int = 20, namespace: str | None = None
    ) -> str:
        return str(
            self.core.read_namespaced_pod_log(
                pod, namespace or self.namespace, container=container, tail_lines=tail
            )
        )

    def _part_log(self, part: str, tail: int) -> str:
        return "\n".join(
            self._log(pod.metadata.name, tail=tail)
            for pod in self._pods(part)
            if pod.status.phase == "Running"
        )

    def delivered(self, alertname: str, status: str) -> list[Alert]:
        return alerts_in_webhook_log(self._part_log("retrain-webhook", 5000), alertname, status)

    def logs(self, *parts: str) -> str:
        stack_pods = {
            "prometheus": (f"prometheus-{STACK}-prometheus-0", "prometheus"),
            "alertmanager": (f"alertmanager-{STACK}-alertmanager-0", "alertmanager"),
        }
        tails = []
        for part in parts or ("prometheus", "alertmanager", *PARTS):
            try:
                if part in stack_pods:
                    text = self._log(*stack_pods[part])
                else:
                    text = self._part_log(part, 20)
            except ApiException as error:
                text = f"(no log: {error.status} {error.reason})"
            tails.append(f"--- {part} ---\n{text}")
        return "\n".join(tails)

    def dashboards(self) -> dict[str, dict[str, Any]]:
        listed = self.core.list_namespaced_config_map(
            self.namespace,
            label_selector=(
                "grafana_dashboard=1,app.kubernetes.io/name=model-monitoring,"
                f"app.kubernetes.io/instance={self.release}"
            ),
        )
        return {
            name: json.loads(text)
            for item in listed.items
            for name, text in (item.data or {}).items()
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
