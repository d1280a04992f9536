"""Turns ServiceMonitors into Prometheus scrape configs, as the Prometheus Operator would.

The operator discovers a ServiceMonitor's targets through the Services it selects and the pods
behind them, and labels each target with namespace, service, pod, container, endpoint and
job (the Service name, or the value of its `jobLabel` label). The local stack knows its pods
already, so it writes the same targets and labels as static configs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from local_stack.manifests import LabelSelector, Service, ServiceMonitor
from local_stack.pods import LOOPBACK, LocalPod


def job_name(monitor: ServiceMonitor, endpoint_index: int) -> str:
    return f"serviceMonitor/{monitor.namespace}/{monitor.name}/{endpoint_index}"


def _selects(monitor: ServiceMonitor, service: Service) -> bool:
    in_namespace = monitor.namespaces is None or service.namespace in monitor.namespaces
    return in_namespace and monitor.selector.matches(service.labels)


def scrape_configs(
    monitors: Sequence[ServiceMonitor],
    services: Sequence[Service],
    pods: Sequence[LocalPod],
) -> list[dict[str, Any]]:
    configs = []
    for monitor in monitors:
        for index, endpoint in enumerate(monitor.endpoints):
            static_configs = []
            for service in services:
                if not _selects(monitor, service):
                    continue
                port = next((p for p in service.ports if p.name == endpoint.port), None)
                if port is None:
                    continue
                backing = [
                    pod
                    for pod in pods
                    if pod.namespace == service.namespace
                    and LabelSelector(service.selector).matches(pod.labels)
                ]
                job = service.labels.get(monitor.job_label or "", service.name)
                for pod in backing:
                    static_configs.append(
                        {
                            "targets": [f"{LOOPBACK}:{pod.port(port.target_port)}"],
                            "labels": {
                                "namespace": service.namespace,
                                "service": service.name,
                                "pod": pod.name,
                                "container": pod.container.name,
                                "endpoint": endpoint.port,
                                "job": job,
                            },
                        }
                    )
            config: dict[str, Any] = {
                "job_name": job_name(monitor, index),
                "honor_labels": False,
                "scrape_interval": endpoint.interval,
                "metrics_path": endpoint.path,
                "scheme": endpoint.scheme,
                "static_configs": static_configs,
            }
            if endpoint.scrape_timeout:
                config["scrape_timeout"] = endpoint.scrape_timeout
            configs.append(config)
    return configs
