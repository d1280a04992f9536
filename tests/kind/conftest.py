"""The kind tier: the umbrella installed in the platform profile on a real cluster.

Runs where a kubeconfig names a reachable cluster (`make test-kind`, or pytest with
--kube-config / KUBECONFIG); everywhere else each test is skipped with that reason. The image
`modelmon-exporter:<appVersion>` must already be loaded into the cluster (`kind load`).
Prometheus, Alertmanager, the router and the exporters are reached through kubectl
port-forward.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from local_stack import chart
from local_stack.pods import free_port
from local_stack.processes import Supervisor, wait_until
from local_stack.prometheus import PrometheusClient
from local_stack.toolchain import REPO_ROOT, require

RELEASE = NAMESPACE = "monitoring"
VALUES = [REPO_ROOT / "values" / "kind.yaml", Path(__file__).with_name("values-kind-e2e.yaml")]
INSTALL_TIMEOUT = "15m"


def kubeconfig(config: pytest.Config) -> str | None:
    path = config.getoption("kube_config", default=None) or os.environ.get("KUBECONFIG")
    return path if path and Path(path).is_file() else None


def reason_to_skip(config: pytest.Config) -> str | None:
    path = kubeconfig(config)
    if path is None:
        return (
            "no Kubernetes cluster: the kind tier needs --kube-config or KUBECONFIG naming "
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
    return None


def kubectl() -> str:
    beside_helm = require("helm").parent / "kubectl"
    return str(beside_helm) if beside_helm.is_file() else "kubectl"


@dataclass
class KindStack:
    kube_config: str
    supervisor: Supervisor
    chart: Path

    def run(self, *argv: str) -> str:
        result = subprocess.run(
            [*argv],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "KUBECONFIG": self.kube_config},
        )
        if result.returncode != 0:
            raise AssertionError(f"{' '.join(argv[:3])}: {result.stderr.strip()}")
        return result.stdout

    def helm(self, *args: str) -> str:
        return self.run(str(require("helm")), *args)

    def forward(self, service: str, port: int) -> str:
        """http://127.0.0.1:<free port> forwarded to the Service's port."""
        local = free_port()
        self.supervisor.start(
            f"port-forward-{service}-{local}",
            [
                kubectl(),
                "--kubeconfig",
                self.kube_config,
                "-n",
                NAMESPACE,
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

    def logs(self, deployment: str) -> str:
        try:
            return self.run(kubectl(), "-n", NAMESPACE, "logs", f"deploy/{deployment}", "--tail=30")
        except AssertionError as error:
            return str(error)

    def set_weight(self, weight: int, router_url: str) -> None:
        self.helm(
            "upgrade",
            RELEASE,
            str(self.chart),
            "-n",
            NAMESPACE,
            "--reuse-values",
            "--set",
            f"model-exporter.canary.weight={weight}",
            "--wait",
        )
        # The kubelet projects the new ConfigMap within its sync period; the router re-reads it.
        wait_until(
            lambda: (
                requests.get(f"{router_url}/readyz", timeout=5).json()["canary_weight"] == weight
            ),
            180,
            describe=f"router weight {weight}",
        )


@pytest.fixture(scope="session")
def kind_stack(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KindStack]:
    reason = reason_to_skip(pytestconfig)
    if reason:
        pytest.skip(reason)
    path = kubeconfig(pytestconfig)
    assert path is not None
    if chart.stack_chart_source() is None:
        pytest.fail(
            "kube-prometheus-stack is not vendored: run `helm dependency build "
            "charts/model-monitoring` before the kind tier"
        )
    workdir = tmp_path_factory.mktemp("kind")
    stack = KindStack(path, Supervisor(workdir / "logs"))
    stack.chart = chart.prepare_umbrella(workdir)
    values = [arg for v in VALUES for arg in ("--values", str(v))]
    stack.helm(
        "upgrade",
        "--install",
        RELEASE,
        str(stack.chart),
        "-n",
        NAMESPACE,
        "--create-namespace",
        *values,
        "--wait",
        "--timeout",
        INSTALL_TIMEOUT,
    )
    try:
        yield stack
    finally:
        stack.supervisor.stop_all()
        stack.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait")


@pytest.fixture(scope="module")
def prometheus(kind_stack: KindStack) -> PrometheusClient:
    client = PrometheusClient(kind_stack.forward(f"{RELEASE}-kube-prometheus-prometheus", 9090))
    wait_until(client.ready, 60, describe="Prometheus ready")
    return client


@pytest.fixture(scope="module")
def urls(kind_stack: KindStack) -> dict[str, str]:
    return {
        part: kind_stack.forward(f"{RELEASE}-model-exporter-{part}", 8080)
        for part in ("stable", "canary", "router")
    }
