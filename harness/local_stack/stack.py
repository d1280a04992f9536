"""The embedded local stack: the chart's rendered manifests, run as processes on 127.0.0.1.

It plays the parts a cluster plays, each in a module of its own: the kubelet (kubelet.py: pods
started, probed, restarted with back-off, stopped gracefully), kube-proxy (proxy.py: a Service
spreads connections over its ready pods), the Deployment controller (rolling updates, scaling:
here), the Prometheus Operator (selection.py and scrape.py: which ServiceMonitors and rules the
stack's Prometheus takes, and their targets) and its config reloader. What it does not model is
listed in the README, and a manifest that depends on it is refused (manifests.ManifestError).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import modelmon
from local_stack import alerting, chart, manifests, prometheus
from local_stack.backoff import INITIAL_SECONDS
from local_stack.kubelet import Kubelet
from local_stack.models import IMAGE_MODEL_DIR, ensure_models
from local_stack.pods import (
    LOOPBACK,
    LocalPod,
    PodRuntime,
    endpoints_of,
    free_port,
    plan_pods,
    service_addresses,
    write_atomically,
)
from local_stack.processes import ManagedProcess, Supervisor, wait_until
from local_stack.proxy import ServiceProxies
from local_stack.scrape import scrape_configs, write_targets
from local_stack.selection import Selection, selected, selections
from local_stack.toolchain import REPO_ROOT
from modelmon.ops.prometheus import PrometheusAPI

DEFAULT_VALUES = REPO_ROOT / "values" / "local.yaml"
# Every server of the chart binds the loopback interface only, whatever its chart default.
POD_ENV = {
    "MODELMON_HOST": LOOPBACK,
    "MODELMON_ROUTER_HOST": LOOPBACK,
    "MODELMON_OPS_HOST": LOOPBACK,
}


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
    # The release name of the kube-prometheus-stack whose Prometheus the stack plays: its
    # selectors want `release: <this>`. None: this release's own (the platform profile).
    stack_release: str | None = None
    # How long a ConfigMap change takes to reach the pods' files (a kubelet: up to a minute).
    config_map_delay: float = 1.0
    # The kubelet's first restart back-off (it doubles from there, up to 5 minutes).
    backoff_initial: float = INITIAL_SECONDS


class LocalStack:
    """Context manager: `with LocalStack(options) as stack:` starts everything, then stops it."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self._own_workdir = self.options.workdir is None
        self.workdir = self.options.workdir or Path(tempfile.mkdtemp(prefix="local-stack-"))
        self.supervisor = Supervisor(self.workdir / "logs")
        self.objects: list[manifests.Manifest] = []
        self.prometheus = PrometheusAPI("")
        self.alertmanager_url = ""
        self.proxies = ServiceProxies()
        self.runtime = PodRuntime(bin_dirs=[], path_map={}, pod_env={})
        self.kubelet = Kubelet(self.runtime, self.supervisor, self._endpoints_changed)
        self._selections: dict[str, Selection] = {}
        self._services: list[manifests.Service] = []
        self._proxy_ports: dict[tuple[str, str, int], int] = {}
        self._workloads: dict[str, manifests.Workload] = {}
        self._next_pod: dict[str, int] = {}
        self._upgrades: dict[str, str] = {}
        self._servers: dict[str, ManagedProcess] = {}
        self._endpoints_lock = threading.Lock()

    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- rendering ------------------------------------------------------------------------

    def render(self, set_values: Mapping[str, str] | None = None) -> list[manifests.Manifest]:
        copy = chart.prepare_umbrella(self.workdir / "chart")
        objects = chart.render(
            copy,
            release=self.options.release,
            namespace=self.options.namespace,
            values_files=self.options.values_files,
            set_values={**self.options.set_values, **(set_values or {})},
        )
        manifests.refuse_not_modelled_kinds(objects)
        return [
            o for o in objects if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})
        ]

    def _stack_selections(self, set_values: Mapping[str, str]) -> dict[str, Selection]:
        values = chart.merged_values(
            self.options.values_files, {**self.options.set_values, **set_values}
        )
        release = self.options.stack_release or self.options.release
        return selections(values.get("kube-prometheus-stack") or {}, release)

    @property
    def monitors(self) -> list[manifests.Monitor]:
        """The ServiceMonitors and PodMonitors the stack's Prometheus takes."""
        return [
            monitor
            for kind in ("ServiceMonitor", "PodMonitor")
            for monitor in manifests.monitors(selected(self.objects, kind, self._selections), kind)
        ]

    # -- pods, Services and endpoints ------------------------------------------------------

    @property
    def services(self) -> list[manifests.Service]:
        return list(self._services)

    @property
    def pods(self) -> list[LocalPod]:
        return self.kubelet.pods()

    def pod(self, name: str) -> LocalPod:
        for pod in self.pods:
            if pod.name == name:
                return pod
        raise KeyError(f"no pod {name}; pods: {', '.join(p.name for p in self.pods)}")

    def pods_of(self, workload: str) -> list[LocalPod]:
        return [pod for pod in self.pods if pod.workload == workload]

    def service_url(self, service: str, port: int | str = "http") -> str:
        """The base URL of a Service of the release (its proxy on 127.0.0.1)."""
        for candidate in self._services:
            if candidate.name != service:
                continue
            for service_port in candidate.ports:
                if port in (service_port.name, service_port.port):
                    key = (candidate.namespace, candidate.name, service_port.port)
                    return f"http://{LOOPBACK}:{self._proxy_ports[key]}"
        raise KeyError(f"no Service {service} with port {port}")

    def _endpoints_changed(self) -> None:
        """Readiness changed: the Services' endpoints and the scrape targets follow."""
        with self._endpoints_lock:
            ready_now = self.kubelet.ready()
            pods = self.pods
            ready_pods = [p for p in pods if ready_now.get(p.name)]
            for service in self._services:
                for port in service.ports:
                    key = (service.namespace, service.name, port.port)
                    self.proxies.set_endpoints(
                        "/".join(map(str, key)), endpoints_of(service, port.port, ready_pods)
                    )
            if self._selections:
                write_targets(
                    self.workdir / "targets",
                    self.monitors,
                    self._services,
                    pods,
                    ready_now,
                )

    def _open_proxies(self) -> None:
        for service in self._services:
            for port in service.ports:
                key = (service.namespace, service.name, port.port)
                if key not in self._proxy_ports:
                    self._proxy_ports[key] = self.proxies.listen("/".join(map(str, key)))

    def _run_pods(self, workload: manifests.Workload, count: int) -> list[LocalPod]:
        first = self._next_pod.get(workload.name, 0)
        pods = plan_pods(workload, first=first, count=count)
        self._next_pod[workload.name] = first + count
        for pod in pods:
            self.kubelet.run(pod)
        return pods

    def wait_ready(self, pods: Sequence[LocalPod], timeout: float | None = None) -> None:
        """Until the pods are ready; fails with the log of one that keeps exiting."""
        timeout = timeout or self.options.ready_timeout

        def all_ready() -> bool:
            ready = self.kubelet.ready()
            for pod in pods:
                status = self.kubelet.status(pod.name)
                if status.restarts and not ready.get(pod.name):
                    log = self.workdir / "logs" / f"{pod.name}.log"
                    last = log.read_text().strip().splitlines()[-1:] if log.exists() else []
                    raise manifests.ManifestError(
                        f"pod {pod.name} exited with code {status.last_exit_code} "
                        f"({last[0] if last else 'no output'}); full log: {log}"
                    )
            return all(ready.get(pod.name) for pod in pods)

        wait_until(all_ready, timeout, describe=f"pods {', '.join(p.name for p in pods)} ready")

    # -- start and stop --------------------------------------------------------------------

    def start(self) -> None:
        self.objects = self.render()
        self._selections = self._stack_selections({})
        bin_dir = Path(sys.executable).parent
        models = ensure_models(bin_dir / "modelmon-train", Path(modelmon.__file__).parent)
        workloads = manifests.workloads(self.objects)
        self._workloads = {w.name: w for w in workloads}
        self._services = manifests.services(self.objects)
        self._open_proxies()
        self.runtime = PodRuntime(
            bin_dirs=[bin_dir],
            path_map={IMAGE_MODEL_DIR: models},
            pod_env=POD_ENV,
            mounts_dir=self.workdir / "volumes",
            config_maps=manifests.config_maps(self.objects),
            config_map_volumes={w.name: w.config_map_volumes for w in workloads},
            services=service_addresses(self._services, self._proxy_ports),
            secrets=self.options.secrets,
            secret_volumes={w.name: w.secret_volumes for w in workloads},
            empty_dir_volumes={w.name: w.empty_dir_volumes for w in workloads},
        )
        self.kubelet = Kubelet(
            self.runtime, self.supervisor, self._endpoints_changed, self.options.backoff_initial
        )
        started = [pod for w in workloads for pod in self._run_pods(w, w.replicas)]
        self.wait_ready(started)
        self._start_prometheus()

    def stop(self) -> None:
        self.kubelet.terminate_all()
        self.proxies.close()
        self.supervisor.stop_all()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the Deployment controller: upgrades and scaling -----------------------------------

    def upgrade(self, set_values: Mapping[str, str]) -> list[str]:
        """`helm upgrade --reuse-values --set ...`: Deployments whose pod template changed roll
        out new pods (their strategy: RollingUpdate surges a ready new pod before it deletes an
        old one; Recreate deletes first), replica counts follow, ConfigMaps reach the files after
        the kubelet's delay, and Prometheus reloads when its rule files change, as the
        operator's config-reloader does (a reload empties Prometheus's list of Alertmanagers for
        a few seconds). Returns the pods that were replaced."""
        values = {**self._upgrades, **set_values}
        objects = self.render(values)
        self._upgrades = values
        replaced = []
        for workload in manifests.workloads(objects):
            old = self._workloads.get(workload.name)
            if old is None:
                raise StackError(f"the upgrade adds {workload.name}: not supported locally")
            self._workloads[workload.name] = workload
            if (old.container, old.pod_labels) != (workload.container, workload.pod_labels):
                replaced += self._roll_out(workload)
            elif old.replicas != workload.replicas:
                self.scale(workload.name, workload.replicas)
        before = self.objects
        for name, data in manifests.config_maps(objects).items():
            if data != manifests.config_maps(before).get(name):
                for key, text in data.items():
                    self.update_config_map(name, key, text)
        self.objects = objects
        selections_before = self._selections
        self._selections = self._stack_selections(values)
        rules_changed = manifests.of_kind(objects, "PrometheusRule") != manifests.of_kind(
            before, "PrometheusRule"
        )
        if rules_changed or selections_before != self._selections:
            self._rule_files()
            self.prometheus.reload()
        return replaced

    def _roll_out(self, workload: manifests.Workload) -> list[str]:
        """Replaces the workload's pods batch by batch: up to maxSurge new pods, once ready, let
        as many old ones go (at least maxUnavailable); with no surge, old pods go first."""
        old = self.pods_of(workload.name)
        strategy = workload.strategy
        remaining, to_start = list(old), workload.replicas
        while remaining or to_start:
            if strategy.max_surge == 0:
                going = remaining[: max(1, strategy.max_unavailable)]
                batch = min(len(going), to_start)
            else:
                batch = min(strategy.max_surge, to_start)
                going = remaining[: max(batch, strategy.max_unavailable)] if batch else remaining
                if batch:
                    self.wait_ready(self._run_pods(workload, batch))
            for pod in going:
                self.kubelet.terminate(pod.name)
                remaining.remove(pod)
            if strategy.max_surge == 0 and batch:
                self.wait_ready(self._run_pods(workload, batch))
            to_start -= batch
        return [p.name for p in old]

    def scale(self, workload: str, replicas: int) -> None:
        """`kubectl scale deployment/<workload> --replicas=N`: newest pods go first."""
        spec = self._workloads[workload]
        current = self.pods_of(workload)
        if replicas > len(current):
            self.wait_ready(self._run_pods(spec, replicas - len(current)))
        for pod in sorted(current, key=lambda p: int(p.name.rsplit("-", 1)[1]))[replicas:]:
            self.kubelet.terminate(pod.name)

    def delete_pod(self, name: str, grace: float | None = None) -> LocalPod:
        """`kubectl delete pod` (`grace` 0: `--grace-period=0 --force`): the pod goes, and its
        Deployment starts a new one in its place at once; returns the new pod (not yet ready)."""
        pod = self.pod(name)
        self.kubelet.terminate(name, grace)
        [replacement] = self._run_pods(self._workloads[pod.workload], 1)
        return replacement

    def update_config_map(self, name: str, key: str, text: str) -> None:
        """Changes a key of a ConfigMap; the files of the pods that mount it change after
        config_map_delay, as the kubelet's sync would (a restarted container sees the new
        content at once)."""
        data = dict(self.runtime.config_maps.get(name, {}))
        data[key] = text
        self.runtime.config_maps[name] = data  # type: ignore[index]

        def project() -> None:
            for pod in self.pods:
                volumes = self.runtime.config_map_volumes.get(pod.workload, {})
                for volume, config_map in volumes.items():
                    folder = self.workdir / "volumes" / pod.name / volume
                    if config_map == name and folder.is_dir():
                        write_atomically(folder / key, text)

        timer = threading.Timer(self.options.config_map_delay, project)
        timer.daemon = True
        timer.start()

    # -- the stack's own servers -----------------------------------------------------------

    def _start_alertmanager(self, port: int | None = None) -> str:
        port = port or free_port()
        resolver = alerting.Resolver(
            secrets=self.options.secrets,
            secrets_dir=self.workdir / "alertmanager-secrets",
            services=self.runtime.services,
        )
        process = alerting.start(
            self.supervisor, alerting.config_from(self.objects, resolver), self.workdir, port
        )
        self._servers["alertmanager"] = process
        self.alertmanager_url = f"http://{LOOPBACK}:{port}"

        def ready() -> bool:
            if not process.alive():
                raise StackError(f"Alertmanager exited: {process.log_tail(1)}")
            return alerting.ready(self.alertmanager_url)

        wait_until(ready, 30, describe="Alertmanager ready")
        return f"{LOOPBACK}:{port}"

    def _rule_files(self) -> list[Path]:
        """Each selected PrometheusRule as a rule file, as the operator mounts them."""
        folder = self.workdir / "rules"
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for rule in selected(self.objects, "PrometheusRule", self._selections):
            path = folder / f"{rule['metadata']['namespace']}-{rule['metadata']['name']}.yaml"
            write_atomically(
                path, yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False)
            )
            files.append(path)
        for stale in set(folder.glob("*.yaml")) - set(files):
            stale.unlink()
        return [folder / "*.yaml"]

    def _start_prometheus(self, port: int | None = None) -> None:
        port = port or self.options.prometheus_port or free_port()
        targets = self.workdir / "targets"
        self._endpoints_changed()
        config = self.workdir / "prometheus.yml"
        prometheus.write_config(
            config,
            scrape_configs(self.monitors, targets),
            evaluation_interval=self.options.evaluation_interval,
            rule_files=self._rule_files(),
            alertmanager=self._start_alertmanager(),
        )
        self._launch_prometheus(config, port)

    def _launch_prometheus(self, config: Path, port: int) -> None:
        process = prometheus.start(self.supervisor, config, self.workdir / "tsdb", port)
        self._servers["prometheus"] = process
        self.prometheus = PrometheusAPI(f"http://{LOOPBACK}:{port}")

        def ready() -> bool:
            if not process.alive():
                raise StackError(f"Prometheus exited:\n{process.log_tail()}")
            return self.prometheus.ready()

        wait_until(ready, 30, describe="Prometheus ready")

    def restart_prometheus(self) -> None:
        """Prometheus's pod replaced: a graceful stop, then a start on the same data and port."""
        process = self._servers["prometheus"]
        process.stop()
        self.supervisor.forget(process)
        port = int(self.prometheus.url.rsplit(":", 1)[1])
        self._launch_prometheus(self.workdir / "prometheus.yml", port)

    def restart_alertmanager(self) -> None:
        """Alertmanager's pod replaced: a graceful stop (it writes its notification log and
        silences to its storage), then a start on the same storage and port."""
        process = self._servers["alertmanager"]
        process.stop()
        self.supervisor.forget(process)
        self._start_alertmanager(int(self.alertmanager_url.rsplit(":", 1)[1]))

    @property
    def servers(self) -> dict[str, ManagedProcess]:
        """The stack's own servers (prometheus, alertmanager) by name."""
        return dict(self._servers)

    def targets_healthy(self) -> bool:
        targets = self.prometheus.targets()
        return bool(targets) and all(t["health"] == "up" for t in targets)
