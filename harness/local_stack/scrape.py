"""ServiceMonitors become scrape configs, and the pods behind their Services become targets, as
the Prometheus Operator and Prometheus's Kubernetes discovery make them.

The operator gives each target namespace, service, pod, container, endpoint and job (the Service
name, or the value of its `jobLabel` label) and then applies the endpoint's relabelings; the
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
    Service,
    ServiceMonitor,
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


def job_name(monitor: ServiceMonitor, endpoint_index: int) -> str:
    return f"serviceMonitor/{monitor.namespace}/{monitor.name}/{endpoint_index}"


def targets_file(folder: Path, monitor: ServiceMonitor, endpoint_index: int) -> Path:
    return folder / f"{monitor.namespace}_{monitor.name}_{endpoint_index}.json"


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _selects(monitor: ServiceMonitor, service: Service) -> bool:
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


def _meta(pod: LocalPod, service: Service, port_name: str, ready: bool) -> dict[str, str]:
    meta = {
        f"{META}namespace": service.namespace,
        f"{META}service_name": service.name,
        f"{META}pod_name": pod.name,
        f"{META}pod_ip": LOOPBACK,
        f"{META}pod_ready": str(ready).lower(),
        f"{META}pod_phase": "Running",
        f"{META}pod_container_name": pod.container.name,
        f"{META}pod_container_port_name": port_name,
        f"{META}pod_container_port_number": str(pod.container.ports.get(port_name, "")),
        f"{META}endpoint_port_name": port_name,
        f"{META}endpoint_ready": str(ready).lower(),
    }
    for prefix, labels in (("service", service.labels), ("pod", pod.labels)):
        for key, value in labels.items():
            meta[f"{META}{prefix}_label_{_sanitize(key)}"] = value
            meta[f"{META}{prefix}_labelpresent_{_sanitize(key)}"] = "true"
    return meta


def target_groups(
    monitor: ServiceMonitor,
    endpoint: Endpoint,
    services: Sequence[Service],
    pods: Sequence[LocalPod],
    ready: Mapping[str, bool],
) -> list[dict[str, Any]]:
    """The file_sd groups of one endpoint of a ServiceMonitor: every running pod behind each
    Service it selects, ready or not (the discovery lists not-ready endpoints too)."""
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
    monitors: Sequence[ServiceMonitor],
    services: Sequence[Service],
    pods: Sequence[LocalPod],
    ready: Mapping[str, bool],
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for monitor in monitors:
        for index, endpoint in enumerate(monitor.endpoints):
            groups = target_groups(monitor, endpoint, services, pods, ready)
            write_atomically(targets_file(folder, monitor, index), json.dumps(groups, indent=1))


def scrape_configs(monitors: Sequence[ServiceMonitor], folder: Path) -> list[dict[str, Any]]:
    configs = []
    for monitor in monitors:
        for index, endpoint in enumerate(monitor.endpoints):
            owner = f"ServiceMonitor {monitor.name} endpoint {index}"
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
