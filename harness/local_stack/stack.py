"""The embedded local stack: the chart's rendered manifests, run as processes on 127.0.0.1."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import modelmon
from local_stack import chart, manifests, prometheus
from local_stack.models import IMAGE_MODEL_DIR, ensure_models
from local_stack.pods import (
    LocalPod,
    PodRuntime,
    free_port,
    service_addresses,
    wait_ready,
    write_atomically,
)
from local_stack.processes import Supervisor, wait_until
from local_stack.scrape import scrape_configs
from local_stack.toolchain import REPO_ROOT

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


class LocalStack:
    """Context manager: `with LocalStack(options) as stack:` starts everything, then stops it."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self._own_workdir = self.options.workdir is None
        self.workdir = self.options.workdir or Path(tempfile.mkdtemp(prefix="local-stack-"))
        self.supervisor = Supervisor(self.workdir / "logs")
        self.objects: list[manifests.Manifest] = []
        self.pods: list[LocalPod] = []
        self.prometheus = prometheus.PrometheusClient("")
        self.runtime = PodRuntime(bin_dirs=[], path_map={}, pod_env={})

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def render(self) -> list[manifests.Manifest]:
        copy = chart.prepare_umbrella(self.workdir / "chart")
        return chart.render(
            copy,
            release=self.options.release,
            namespace=self.options.namespace,
            values_files=self.options.values_files,
            set_values=self.options.set_values,
        )

    def start(self) -> None:
        self.objects = [
            o
            for o in self.render()
            if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})
        ]
        bin_dir = Path(sys.executable).parent
        models = ensure_models(bin_dir / "modelmon-train", Path(modelmon.__file__).parent)
        workloads = manifests.workloads(self.objects)
        planner = PodRuntime(bin_dirs=[bin_dir], path_map={}, pod_env={})
        for workload in workloads:
            self.pods.extend(planner.plan(workload))
        self.runtime = PodRuntime(
            bin_dirs=[bin_dir],
            path_map={IMAGE_MODEL_DIR: models},
            pod_env=POD_ENV,
            mounts_dir=self.workdir / "volumes",
            config_maps=manifests.config_maps(self.objects),
            config_map_volumes={w.name: w.config_map_volumes for w in workloads},
            services=service_addresses(manifests.services(self.objects), self.pods),
        )
        for pod in self.pods:
            self.runtime.start(pod, self.supervisor)
        wait_ready(self.pods, self.options.ready_timeout)
        self._start_prometheus()

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
            evaluation_interval="2s",
        )
        process = prometheus.start(self.supervisor, config, self.workdir / "tsdb", port)
        self.prometheus = prometheus.PrometheusClient(f"http://127.0.0.1:{port}")

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
        if not updated:
            raise StackError(f"no running pod mounts ConfigMap {name}")

    def targets_healthy(self) -> bool:
        targets = self.prometheus.targets()
        return bool(targets) and all(t["health"] == "up" for t in targets)

    def stop(self) -> None:
        self.supervisor.stop_all()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
