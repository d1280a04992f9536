"""The embedded local stack: the chart's rendered manifests, run as processes on 127.0.0.1."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import modelmon
from local_stack import alerting, chart, manifests, prometheus
from local_stack.models import IMAGE_MODEL_DIR, ensure_models
from local_stack.pods import (
    LocalPod,
    PodRuntime,
    free_port,
    plan_pods,
    service_addresses,
    wait_ready,
    write_atomically,
)
from local_stack.processes import Supervisor, wait_until
from local_stack.scrape import scrape_configs
from local_stack.toolchain import REPO_ROOT
from modelmon.ops.prometheus import PrometheusAPI

DEFAULT_VALUES = REPO_ROOT / "values" / "local.yaml"
POD_ENV = {"MODELMON_HOST": "127.0.0.1"}


class StackError(Exception):
    """The stack could not start; the message says what failed and where to look."""


@dataclass(frozen=True)
class StackOptions:
    values_files: Sequence[Path] = (DEFAULT_VALUES,)
    set_values: Mapping[str, str] = field(default_factory=dict)
    release: str = "demo"
    namespace: str = "kubeflow-user01"
    prometheus_port: int | None = None
    workdir: Path | None = None
    ready_timeout: float = 60.0
    evaluation_interval: str = "2s"
    # Secrets a cluster would hold (name -> key -> value), for pods and Alertmanager that need
    # them; the chart only names them.
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


class LocalStack:
    """Context manager: `with LocalStack(options) as stack:` starts everything, then stops it."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self._own_workdir = self.options.workdir is None
        self.workdir = self.options.workdir or Path(tempfile.mkdtemp(prefix="local-stack-"))
        self.supervisor = Supervisor(self.workdir / "logs")
        self.objects: list[manifests.Manifest] = []
        self.pods: list[LocalPod] = []
        self.prometheus = PrometheusAPI("")
        self.runtime = PodRuntime(bin_dirs=[], path_map={}, pod_env={})
        self.alertmanager_url = ""
        self._upgrades: dict[str, str] = {}

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def render(self, set_values: Mapping[str, str] | None = None) -> list[manifests.Manifest]:
        copy = chart.prepare_umbrella(self.workdir / "chart")
        objects = chart.render(
            copy,
            release=self.options.release,
            namespace=self.options.namespace,
            values_files=self.options.values_files,
            set_values={**self.options.set_values, **(set_values or {})},
        )
        return [
            o for o in objects if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})
        ]

    def upgrade(self, set_values: Mapping[str, str]) -> list[str]:
        """`helm upgrade --reuse-values --set ...` on the local stack: pods whose container
        changed restart (on their ports), ConfigMap files change in place, and Prometheus
        reloads when its rule files change, as the operator's config-reloader does (a reload
        empties Prometheus's list of Alertmanagers for a few seconds; what it sends then is
        dropped). Returns the pods that restarted."""
        values = {**self._upgrades, **set_values}
        objects = self.render(values)
        self._upgrades = values
        containers = {w.name: w.containers[0] for w in manifests.workloads(objects)}
        restarted = []
        for pod in self.pods:
            new = containers.get(pod.workload)
            if new is None:
                raise StackError(f"the upgrade removes {pod.workload}: not supported locally")
            if new != pod.container:
                pod.container = new
                self.restart_pod(pod.name)
                restarted.append(pod.name)
        for name, data in manifests.config_maps(objects).items():
            if data != manifests.config_maps(self.objects).get(name):
                for key, text in data.items():
                    self.update_config_map(name, key, text)
        rules_before = manifests.of_kind(self.objects, "PrometheusRule")
        self.objects = objects
        if manifests.of_kind(objects, "PrometheusRule") != rules_before:
            self._rule_files()
            self.prometheus.reload()
        return restarted

    def start(self) -> None:
        self.objects = self.render()
        bin_dir = Path(sys.executable).parent
        models = ensure_models(bin_dir / "modelmon-train", Path(modelmon.__file__).parent)
        workloads = manifests.workloads(self.objects)
        for workload in workloads:
            self.pods.extend(plan_pods(workload))
        self.runtime = PodRuntime(
            bin_dirs=[bin_dir],
            path_map={IMAGE_MODEL_DIR: models},
            pod_env=POD_ENV,
            mounts_dir=self.workdir / "volumes",
            config_maps=manifests.config_maps(self.objects),
            config_map_volumes={w.name: w.config_map_volumes for w in workloads},
            services=service_addresses(manifests.services(self.objects), self.pods),
            secrets=self.options.secrets,
            secret_volumes={w.name: w.secret_volumes for w in workloads},
            empty_dir_volumes={w.name: w.empty_dir_volumes for w in workloads},
        )
        for pod in self.pods:
            self.runtime.start(pod, self.supervisor)
        wait_ready(self.pods, self.options.ready_timeout)
        self._start_prometheus()

    def _start_alertmanager(self) -> str:
        port = free_port()
        resolver = alerting.Resolver(
            secrets=self.options.secrets,
            secrets_dir=self.workdir / "alertmanager-secrets",
            services=self.runtime.services,
        )
        process = alerting.start(
            self.supervisor, alerting.config_from(self.objects, resolver), self.workdir, port
        )
        self.alertmanager_url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if not process.alive():
                raise StackError(f"Alertmanager exited: {process.log_tail(1)}")
            return alerting.ready(self.alertmanager_url)

        wait_until(ready, 30, describe="Alertmanager ready")
        return f"127.0.0.1:{port}"

    def _rule_files(self) -> list[Path]:
        """Each rendered PrometheusRule as a rule file, as the operator mounts them."""
        folder = self.workdir / "rules"
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for rule in manifests.of_kind(self.objects, "PrometheusRule"):
            path = folder / f"{rule['metadata']['name']}.yaml"
            write_atomically(
                path, yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False)
            )
            files.append(path)
        for stale in set(folder.glob("*.yaml")) - set(files):
            stale.unlink()
        return files

    def _start_prometheus(self) -> None:
        port = self.options.prometheus_port or free_port()
        config = self.workdir / "prometheus.yml"
        prometheus.write_config(
            config,
            scrape_configs(
                manifests.service_monitors(self.objects),
                manifests.services(self.objects),
                self.pods,
            ),
            evaluation_interval=self.options.evaluation_interval,
            rule_files=self._rule_files(),
            alertmanager=self._start_alertmanager(),
        )
        process = prometheus.start(self.supervisor, config, self.workdir / "tsdb", port)
        self.prometheus = PrometheusAPI(f"http://127.0.0.1:{port}")

        def ready() -> bool:
            if not process.alive():
                raise StackError(f"Prometheus exited:\n{process.log_tail()}")
            return self.prometheus.ready()

        wait_until(ready, 30, describe="Prometheus ready")

    def pod(self, name: str) -> LocalPod:
        for pod in self.pods:
            if pod.name == name:
                return pod
        raise KeyError(f"no pod {name}; pods: {', '.join(p.name for p in self.pods)}")

    def restart_pod(self, name: str, timeout: float = 30) -> None:
        """Starts a pod's process again, as its Deployment would after the pod died."""
        pod = self.pod(name)
        if pod.process is not None:
            pod.process.stop()
            self.supervisor.processes.remove(pod.process)
        self.runtime.start(pod, self.supervisor)
        wait_ready([pod], timeout)

    def update_config_map(self, name: str, key: str, text: str) -> None:
        """Changes a key in every pod that mounts the ConfigMap, as the kubelet would."""
        updated = 0
        for pod in self.pods:
            volumes = self.runtime.config_map_volumes.get(pod.workload, {})
            for volume, config_map in volumes.items():
                folder = self.workdir / "volumes" / pod.name / volume
                if config_map == name and folder.is_dir():
                    write_atomically(folder / key, text)
                    updated += 1
        if not updated and any(
            name in volumes.values() for volumes in self.runtime.config_map_volumes.values()
        ):
            raise StackError(f"no running pod mounts ConfigMap {name}")

    def targets_healthy(self) -> bool:
        targets = self.prometheus.targets()
        return bool(targets) and all(t["health"] == "up" for t in targets)

    def stop(self) -> None:
        self.supervisor.stop_all()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
