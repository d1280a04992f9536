"""The embedded local stack: the chart's rendered manifests, run as processes on 127.0.0.1.

It plays the parts a cluster plays, each in a module of its own: the kubelet (kubelet.py: pods
started, probed, restarted with back-off, stopped gracefully), kube-proxy (proxy.py: a Service
spreads connections over its ready pods), the Deployment controller (rolling updates, scaling:
here), the Prometheus Operator (selection.py and scrape.py: which ServiceMonitors and rules the
stack's Prometheus takes, and their targets) and its config reloader. What it does not model is
listed in the README, and a manifest that depends on it is refused (manifests.ManifestError).

Like a cluster it holds several releases, each in its namespace: the first (StackOptions) is the
platform's, whose values give the stack's selectors; `install`, `upgrade` and `uninstall` add,
change and remove others as helm does, and the stack's Prometheus and Alertmanager follow (a
reload, as the operator's config-reloader makes one).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from modelmon.ops.users import lab_namespace

DEFAULT_VALUES = REPO_ROOT / "values" / "local.yaml"
# Every server of the chart binds the loopback interface only, whatever its chart default.
POD_ENV = {
    "MODELMON_HOST": LOOPBACK,
    "MODELMON_ROUTER_HOST": LOOPBACK,
    "MODELMON_OPS_HOST": LOOPBACK,
}


def _identity(obj: manifests.Manifest) -> str:
    return f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


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


@dataclass(frozen=True)
class ReleaseSpec:
    """What `helm install <name> -n <namespace> -f ... --set ...` is given, and the Secrets
    that namespace holds (name -> key -> value)."""

    name: str
    namespace: str
    values_files: Sequence[Path] = (DEFAULT_VALUES,)
    set_values: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


def attached(
    user: str,
    platform: ReleaseSpec,
    values_files: Sequence[Path] = (DEFAULT_VALUES,),
    set_values: Mapping[str, str] | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
) -> ReleaseSpec:
    """A user's release in the lab's namespace of the user (kubeflow-<user>), attached to the
    platform release's stack (the attach profile), as `helm install <user>`."""
    return ReleaseSpec(
        name=user,
        namespace=lab_namespace(user),
        values_files=values_files,
        set_values={
            "model-exporter.userId": user,
            "model-exporter.monitoring.stackRelease": platform.name,
            "model-exporter.monitoring.stackNamespace": platform.namespace,
            **(set_values or {}),
        },
        secrets=secrets or {},
    )


@dataclass
class Release:
    """An installed release: what it was given, its `--set` upgrades, and what it rendered."""

    spec: ReleaseSpec
    upgrades: dict[str, str] = field(default_factory=dict)
    objects: list[manifests.Manifest] = field(default_factory=list)
    workloads: dict[str, manifests.Workload] = field(default_factory=dict)
    services: list[manifests.Service] = field(default_factory=list)


class LocalStack:
    """Context manager: `with LocalStack(options) as stack:` starts everything, then stops it."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self._own_workdir = self.options.workdir is None
        self.workdir = self.options.workdir or Path(tempfile.mkdtemp(prefix="local-stack-"))
        self.supervisor = Supervisor(self.workdir / "logs")
        self.releases: dict[str, Release] = {}
        self.prometheus = PrometheusAPI("")
        self.alertmanager_url = ""
        self.proxies = ServiceProxies()
        # The cluster's state that pods read, updated in place as releases come and go.
        self._config_maps: dict[str, Mapping[str, str]] = {}
        self._config_map_volumes: dict[str, Mapping[str, str]] = {}
        self._secret_volumes: dict[str, Mapping[str, str]] = {}
        self._empty_dirs: dict[str, frozenset[str]] = {}
        self._claim_volumes: dict[str, Mapping[str, str]] = {}
        self._claims: dict[str, Path] = {}
        self._addresses: dict[str, str] = {}
        self._secrets: dict[str, Mapping[str, Mapping[str, str]]] = {}
        self.runtime = PodRuntime(bin_dirs=[], path_map={}, pod_env={})
        self.kubelet = Kubelet(self.runtime, self.supervisor, self._endpoints_changed)
        self._selections: dict[str, Selection] = {}
        self._monitors: list[manifests.Monitor] = []
        self._proxy_ports: dict[tuple[str, str, int], int] = {}
        self._next_pod: dict[str, int] = {}
        self._servers: dict[str, ManagedProcess] = {}
        self._endpoints_lock = threading.Lock()
        self._reconfigure_lock = threading.RLock()

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

    @property
    def platform(self) -> ReleaseSpec:
        """The first release, the platform's: its values give the stack's selectors."""
        options = self.options
        return ReleaseSpec(
            options.release,
            options.namespace,
            options.values_files,
            options.set_values,
            options.secrets,
        )

    @property
    def objects(self) -> list[manifests.Manifest]:
        """Every object of every installed release (the cluster's, as far as ours go)."""
        return [obj for release in self.releases.values() for obj in release.objects]

    @property
    def _workloads(self) -> dict[str, manifests.Workload]:
        return {n: w for r in self.releases.values() for n, w in r.workloads.items()}

    @property
    def _services(self) -> list[manifests.Service]:
        return [s for release in self.releases.values() for s in release.services]

    def render(
        self, spec: ReleaseSpec | None = None, set_values: Mapping[str, str] | None = None
    ) -> list[manifests.Manifest]:
        spec = spec or self.platform
        copy = chart.prepare_umbrella(self.workdir / "chart")
        objects = chart.render(
            copy,
            release=spec.name,
            namespace=spec.namespace,
            values_files=spec.values_files,
            set_values={**spec.set_values, **(set_values or {})},
        )
        manifests.refuse_not_modelled_kinds(objects)
        return [
            o for o in objects if "helm.sh/hook" not in (o["metadata"].get("annotations") or {})
        ]

    def _stack_selections(self) -> dict[str, Selection]:
        platform = self.releases.get(self.options.release)
        upgrades = platform.upgrades if platform else {}
        values = chart.merged_values(
            self.options.values_files, {**self.options.set_values, **upgrades}
        )
        release = self.options.stack_release or self.options.release
        return selections(values.get("kube-prometheus-stack") or {}, release)

    @property
    def monitors(self) -> list[manifests.Monitor]:
        """The ServiceMonitors and PodMonitors the stack's Prometheus takes (as of the last
        change of releases: the operator logs what it leaves out once per change)."""
        return list(self._monitors)

    def _select_monitors(self) -> list[manifests.Monitor]:
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

    def claim_folder(self, claim: manifests.Claim) -> Path:
        """The folder that is a PersistentVolumeClaim's volume (what `kubectl cp` would reach)."""
        return self.workdir / "claims" / claim.namespace / claim.name

    def service_url(
        self, service: str, port: int | str = "http", namespace: str | None = None
    ) -> str:
        """The base URL of a Service (its proxy on 127.0.0.1); in the platform release's
        namespace unless another is named."""
        namespace = namespace or self.options.namespace
        for candidate in self._services:
            if (candidate.name, candidate.namespace) != (service, namespace):
                continue
            for service_port in candidate.ports:
                if port in (service_port.name, service_port.port):
                    key = (candidate.namespace, candidate.name, service_port.port)
                    return f"http://{LOOPBACK}:{self._proxy_ports[key]}"
        raise KeyError(f"no Service {namespace}/{service} with port {port}")

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
                if status.error:
                    raise manifests.ManifestError(status.error)
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
        bin_dir = Path(sys.executable).parent
        models = ensure_models(bin_dir / "modelmon-train", Path(modelmon.__file__).parent)
        self.runtime = PodRuntime(
            bin_dirs=[bin_dir],
            path_map={IMAGE_MODEL_DIR: models},
            pod_env=POD_ENV,
            mounts_dir=self.workdir / "volumes",
            config_maps=self._config_maps,
            config_map_volumes=self._config_map_volumes,
            services=self._addresses,
            secrets=self._secrets,
            secret_volumes=self._secret_volumes,
            empty_dir_volumes=self._empty_dirs,
            claim_volumes=self._claim_volumes,
            claims=self._claims,
        )
        self.kubelet = Kubelet(
            self.runtime, self.supervisor, self._endpoints_changed, self.options.backoff_initial
        )
        self._install(self.platform)
        self._reconfigure()
        self._start_prometheus()

    def stop(self) -> None:
        self.kubelet.terminate_all()
        self.proxies.close()
        self.supervisor.stop_all()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- helm: install and uninstall -------------------------------------------------------

    def install(self, spec: ReleaseSpec) -> list[LocalPod]:
        """`helm install`: the release's pods run and are ready, its Services answer, and the
        stack's Prometheus and Alertmanager take its monitors, rules and routes. Returns its
        pods."""
        with self._reconfigure_lock:
            if spec.name in self.releases:
                raise StackError(
                    f"release {spec.name} is already installed (helm: cannot re-use a name)"
                )
            try:
                pods = self._install(spec)
            except BaseException:
                if spec.name in self.releases:
                    self._remove(spec.name)  # a failed install leaves nothing running
                raise
            self._reconfigure()
        return pods

    def _install(self, spec: ReleaseSpec) -> list[LocalPod]:
        objects = self.render(spec)
        owned = {_identity(o) for o in self.objects}
        clash = sorted(_identity(o) for o in objects if _identity(o) in owned)
        if clash:
            raise StackError(
                f"release {spec.name}: {clash[0]} belongs to another release (helm refuses an "
                "object another release owns)"
            )
        workloads = manifests.workloads(objects)
        taken = {pod.name for pod in self.pods}
        if any(w.name in self._workloads or f"{w.name}-0" in taken for w in workloads):
            raise StackError(f"release {spec.name}: its Deployments' names are taken")
        release = Release(
            spec,
            objects=objects,
            workloads={w.name: w for w in workloads},
            services=manifests.services(objects),
        )
        with self._endpoints_lock:
            self.releases[spec.name] = release
        self._secrets[spec.namespace] = {**self._secrets.get(spec.namespace, {}), **spec.secrets}
        self._config_maps.update(manifests.config_maps(objects))
        for workload in workloads:
            self._config_map_volumes[workload.name] = workload.config_map_volumes
            self._secret_volumes[workload.name] = workload.secret_volumes
            self._empty_dirs[workload.name] = workload.empty_dir_volumes
            self._claim_volumes[workload.name] = workload.claim_volumes
        for claim in manifests.claims(objects):
            self._claims[f"{claim.namespace}/{claim.name}"] = self.claim_folder(claim)
        self._open_proxies()
        self._addresses.update(service_addresses(release.services, self._proxy_ports))
        started = [pod for w in workloads for pod in self._run_pods(w, w.replicas)]
        self.wait_ready(started)
        return started

    def uninstall(self, name: str) -> None:
        """`helm uninstall`: the release's pods stop gracefully, its Services go, and the
        stack's Prometheus and Alertmanager let go of its targets, rules and routes; the other
        releases are left as they were."""
        if name == self.options.release:
            raise StackError(f"{name} is the platform's release, which the stack runs on")
        if name not in self.releases:
            raise StackError(f"release {name} is not installed")
        with self._reconfigure_lock:
            self._remove(name)
            self._reconfigure()

    def _remove(self, name: str) -> None:
        with self._endpoints_lock:
            release = self.releases.pop(name)
        # helm deletes the release's objects at once: its pods stop side by side
        self.kubelet.terminate_together(
            [pod.name for workload in release.workloads for pod in self.pods_of(workload)]
        )
        for workload in release.workloads:
            for table in (
                self._config_map_volumes,
                self._secret_volumes,
                self._empty_dirs,
                self._claim_volumes,
            ):
                table.pop(workload, None)
        for claim in manifests.claims(release.objects):
            if not claim.kept_on_uninstall:  # helm deletes it, and its volume goes with it
                self._claims.pop(f"{claim.namespace}/{claim.name}", None)
                shutil.rmtree(self.claim_folder(claim), ignore_errors=True)
        for config_map in manifests.config_maps(release.objects):
            self._config_maps.pop(config_map, None)
        for service in release.services:
            for port in service.ports:
                key = (service.namespace, service.name, port.port)
                if key in self._proxy_ports:
                    self.proxies.remove("/".join(map(str, key)))
                    del self._proxy_ports[key]
        self._addresses.clear()
        self._addresses.update(service_addresses(self._services, self._proxy_ports))

    # -- the Deployment controller: upgrades and scaling -----------------------------------

    def upgrade(self, set_values: Mapping[str, str], release: str | None = None) -> list[str]:
        """`helm upgrade --reuse-values --set ...` of a release (the platform's unless named):
        Deployments whose pod template changed roll out new pods (their strategy:
        RollingUpdate surges a ready new pod before it deletes an old one; Recreate deletes
        first), replica counts follow, ConfigMaps reach the files after the kubelet's delay, and
        Prometheus and Alertmanager reload when their configuration or rule files change, as
        the operator's config-reloader does (a reload empties Prometheus's list of
        Alertmanagers for a few seconds). Returns the pods that were replaced."""
        with self._reconfigure_lock:
            target = self.releases[release or self.options.release]
            values = {**target.upgrades, **set_values}
            objects = self.render(target.spec, values)
            target.upgrades = values
            replaced = []
            for workload in manifests.workloads(objects):
                old = target.workloads.get(workload.name)
                if old is None:
                    raise StackError(f"the upgrade adds {workload.name}: not supported locally")
                target.workloads[workload.name] = workload
                if (old.container, old.pod_labels) != (workload.container, workload.pod_labels):
                    replaced += self._roll_out(workload)
                elif old.replicas != workload.replicas:
                    self.scale(workload.name, workload.replicas)
            before = manifests.config_maps(target.objects)
            for name, data in manifests.config_maps(objects).items():
                if data != before.get(name):
                    for key, text in data.items():
                        self.update_config_map(name, key, text)
            target.objects = objects
            self._reconfigure()
        return replaced

    def _reconfigure(self) -> None:
        """The operator's part after releases changed: the selections, the targets, the rule
        files and both servers' configuration; each server reloads only when its files
        changed."""
        self._selections = self._stack_selections()
        self._monitors = self._select_monitors()
        if not self._servers:
            return  # Prometheus and Alertmanager start with the current state
        self._endpoints_changed()
        if self._write_prometheus_files():
            self.prometheus.reload()
        if alerting.write_config(self._alertmanager_config(), self.workdir / "alertmanager.yml"):
            alerting.reload(self.alertmanager_url)

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

    def _alertmanager_config(self) -> dict[str, Any]:
        resolver = alerting.Resolver(
            secrets=self._secrets,
            secrets_dir=self.workdir / "alertmanager-secrets",
            services=self._addresses,
        )
        return alerting.config_from(self.objects, resolver)

    def _start_alertmanager(self, port: int | None = None) -> str:
        port = port or free_port()
        process = alerting.start(self.supervisor, self._alertmanager_config(), self.workdir, port)
        self._servers["alertmanager"] = process
        self.alertmanager_url = f"http://{LOOPBACK}:{port}"

        def ready() -> bool:
            if not process.alive():
                raise StackError(f"Alertmanager exited: {process.log_tail(1)}")
            return alerting.ready(self.alertmanager_url)

        wait_until(ready, 30, describe="Alertmanager ready")
        return f"{LOOPBACK}:{port}"

    def _write_rule_files(self) -> bool:
        """Each selected PrometheusRule as a rule file, as the operator mounts them; whether
        any file changed."""
        folder = self.workdir / "rules"
        folder.mkdir(parents=True, exist_ok=True)
        files, changed = [], False
        for rule in selected(self.objects, "PrometheusRule", self._selections):
            path = folder / f"{rule['metadata']['namespace']}-{rule['metadata']['name']}.yaml"
            text = yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False)
            if not path.is_file() or path.read_text() != text:
                write_atomically(path, text)
                changed = True
            files.append(path)
        for stale in set(folder.glob("*.yaml")) - set(files):
            stale.unlink()
            changed = True
        return changed

    def _write_prometheus_files(self) -> bool:
        """Rule files and prometheus.yml; whether Prometheus has anything new to read."""
        rules_changed = self._write_rule_files()
        config_changed = prometheus.write_config(
            self.workdir / "prometheus.yml",
            scrape_configs(self.monitors, self.workdir / "targets"),
            evaluation_interval=self.options.evaluation_interval,
            rule_files=[self.workdir / "rules" / "*.yaml"],
            alertmanager=self.alertmanager_url.removeprefix("http://") or None,
        )
        return rules_changed or config_changed

    def _start_prometheus(self, port: int | None = None) -> None:
        port = port or self.options.prometheus_port or free_port()
        self._start_alertmanager()
        self._endpoints_changed()
        self._write_prometheus_files()
        self._launch_prometheus(self.workdir / "prometheus.yml", port)

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
