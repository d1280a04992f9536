"""ServiceMonitors and PodMonitors become scrape configs, and the pods behind their Services (or
the pods they select) become targets, as the Prometheus Operator and Prometheus's Kubernetes
discovery make them.

The operator gives each target of a ServiceMonitor namespace, service, pod, container, endpoint
and job (the Service name, or the value of its `jobLabel` label); a PodMonitor's get namespace,
pod, container, endpoint and job `<namespace>/<name>` and no service
(pkg/prometheus/promcfg.go, generatePodMonitorConfig). Then the endpoint's relabelings; the
discovery keeps the target list current as pods come and go. Here each job's targets live in a
file that Prometheus watches (file_sd), rewritten whenever a pod starts or goes, with the
`__meta_kubernetes_*` labels a relabeling may read. A relabeling that reads a meta label the
local stack does not make is refused by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from local_stack.manifests import (
    Endpoint,
    LabelSelector,
    ManifestError,
    Monitor,
    Service,
)
from local_stack.pods import LOOPBACK, LocalPod, write_atomically

RELABEL_FIELDS = {
    "sourceLabels": "source_labels",
    "separator": "separator",
    "targetLabel": "target_label",
    "regex": "regex",
    "modulus": "modulus",
    "replacement": "replacement",
    "action": "action",
}
# The meta labels of Prometheus's Kubernetes endpoints discovery that the local stack makes.
META = "__meta_kubernetes_"
MADE_META = (
    "namespace",
    "service_name",
    "service_label_",
    "service_labelpresent_",
    "pod_name",
    "pod_ip",
    "pod_ready",
    "pod_phase",
    "pod_label_",
    "pod_labelpresent_",
    "pod_container_name",
    "pod_container_port_name",
    "pod_container_port_number",
    "endpoint_port_name",
    "endpoint_ready",
)


def job_name(monitor: Monitor, endpoint_index: int) -> str:
    kind = monitor.kind[0].lower() + monitor.kind[1:]
    return f"{kind}/{monitor.namespace}/{monitor.name}/{endpoint_index}"


def targets_file(folder: Path, monitor: Monitor, endpoint_index: int) -> Path:
    return folder / f"{monitor.kind}_{monitor.namespace}_{monitor.name}_{endpoint_index}.json"


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _selects(monitor: Monitor, service: Service) -> bool:
    in_namespace = monitor.namespaces is None or service.namespace in monitor.namespaces
    return in_namespace and monitor.selector.matches(service.labels)


def relabel_config(spec: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """One RelabelConfig of the CRD in Prometheus's own spelling (the operator's translation)."""
    unknown = sorted(set(spec) - set(RELABEL_FIELDS))
    if unknown:
        raise ManifestError(f"{owner}: relabeling field {unknown[0]} is not known")
    config = {RELABEL_FIELDS[key]: value for key, value in spec.items()}
    if "action" in config:
        config["action"] = str(config["action"]).lower()
    for source in config.get("source_labels", ()):
        if source.startswith(META) and not source[len(META) :].startswith(MADE_META):
            raise ManifestError(
                f"{owner}: relabeling reads {source}, which the local stack's discovery does "
                "not make"
            )
    return config


def _meta(pod: LocalPod, service: Service | None, port_name: str, ready: bool) -> dict[str, str]:
    """The discovery's labels of one pod port: the endpoints role's (with its Service) for a
    ServiceMonitor, the pod role's (without) for a PodMonitor."""
    meta = {
        f"{META}namespace": pod.namespace,
        f"{META}pod_name": pod.name,
        f"{META}pod_ip": LOOPBACK,
        f"{META}pod_ready": str(ready).lower(),
        f"{META}pod_phase": "Running",
        f"{META}pod_container_name": pod.container.name,
        f"{META}pod_container_port_name": port_name,
        f"{META}pod_container_port_number": str(pod.container.ports.get(port_name, "")),
    }
    sources = [("pod", pod.labels)]
    if service is not None:
        meta[f"{META}service_name"] = service.name
        meta[f"{META}endpoint_port_name"] = port_name
        meta[f"{META}endpoint_ready"] = str(ready).lower()
        sources.append(("service", service.labels))
    for prefix, labels in sources:
        for key, value in labels.items():
            meta[f"{META}{prefix}_label_{_sanitize(key)}"] = value
            meta[f"{META}{prefix}_labelpresent_{_sanitize(key)}"] = "true"
    return meta


def pod_target_groups(
    monitor: Monitor, endpoint: Endpoint, pods: Sequence[LocalPod], ready: Mapping[str, bool]
) -> list[dict[str, Any]]:
    """The file_sd groups of one endpoint of a PodMonitor: every running pod it selects that
    has a container port of the endpoint's name, ready or not."""
    groups = []
    for pod in pods:
        in_namespace = monitor.namespaces is None or pod.namespace in monitor.namespaces
        if not in_namespace or not monitor.selector.matches(pod.labels):
            continue
        if endpoint.port not in pod.container.ports:
            continue
        labels = {
            **_meta(pod, None, endpoint.port, ready.get(pod.name, False)),
            **{k: pod.labels[k] for k in monitor.pod_target_labels if k in pod.labels},
            "namespace": pod.namespace,
            "pod": pod.name,
            "container": pod.container.name,
            "endpoint": endpoint.port,
            "job": pod.labels.get(monitor.job_label or "", f"{monitor.namespace}/{monitor.name}"),
        }
        address = f"{LOOPBACK}:{pod.port(endpoint.port)}"
        groups.append({"targets": [address], "labels": labels})
    return groups


def target_groups(
    monitor: Monitor,
    endpoint: Endpoint,
    services: Sequence[Service],
    pods: Sequence[LocalPod],
    ready: Mapping[str, bool],
) -> list[dict[str, Any]]:
    """The file_sd groups of one endpoint of a monitor. A ServiceMonitor's: every running pod
    behind each Service it selects, ready or not (the discovery lists not-ready endpoints too)."""
    if monitor.kind == "PodMonitor":
        return pod_target_groups(monitor, endpoint, pods, ready)
    groups = []
    for service in services:
        if not _selects(monitor, service):
            continue
        port = next((p for p in service.ports if p.name == endpoint.port), None)
        if port is None:
            continue
        job = service.labels.get(monitor.job_label or "", service.name)
        for pod in pods:
            if pod.namespace != service.namespace:
                continue
            if not LabelSelector(service.selector).matches(pod.labels):
                continue
            labels = {
                **_meta(pod, service, endpoint.port, ready.get(pod.name, False)),
                **{k: service.labels[k] for k in monitor.target_labels if k in service.labels},
                **{k: pod.labels[k] for k in monitor.pod_target_labels if k in pod.labels},
                "namespace": service.namespace,
                "service": service.name,
                "pod": pod.name,
                "container": pod.container.name,
                "endpoint": endpoint.port,
                "job": job,
            }
            address = f"{LOOPBACK}:{pod.port(port.target_port)}"
            groups.append({"targets": [address], "labels": labels})
    return groups


def write_targets(
    folder: Path,
    monitors: Sequence[Monitor],
    services: Sequence[Service],
    pods: Sequence[LocalPod],
    ready: Mapping[str, bool],
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    written = set()
    for monitor in monitors:
        for index, endpoint in enumerate(monitor.endpoints):
            groups = target_groups(monitor, endpoint, services, pods, ready)
            path = targets_file(folder, monitor, index)
            write_atomically(path, json.dumps(groups, indent=1))
            written.add(path)
    for stale in set(folder.glob("*.json")) - written:  # a monitor that is gone
        stale.unlink()


def scrape_configs(monitors: Sequence[Monitor], folder: Path) -> list[dict[str, Any]]:
    configs = []
    for monitor in monitors:
        for index, endpoint in enumerate(monitor.endpoints):
            owner = f"{monitor.kind} {monitor.name} endpoint {index}"
            config: dict[str, Any] = {
                "job_name": job_name(monitor, index),
                "honor_labels": endpoint.honor_labels,
                "scrape_interval": endpoint.interval,
                "metrics_path": endpoint.path,
                "scheme": endpoint.scheme,
                "file_sd_configs": [{"files": [str(targets_file(folder, monitor, index))]}],
                **monitor.limits,
            }
            if endpoint.scrape_timeout:
                config["scrape_timeout"] = endpoint.scrape_timeout
            if endpoint.params:
                config["params"] = {k: list(v) for k, v in endpoint.params.items()}
            if endpoint.relabelings:
                config["relabel_configs"] = [relabel_config(r, owner) for r in endpoint.relabelings]
            if endpoint.metric_relabelings:
                config["metric_relabel_configs"] = [
                    relabel_config(r, owner) for r in endpoint.metric_relabelings
                ]
            configs.append(config)
    return configs
