"""ServiceMonitors of the rendered chart become the scrape configs and targets the operator and
Prometheus's Kubernetes discovery would make; what the local stack cannot honour is refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from local_stack import chart, manifests
from local_stack.pods import plan_pods
from local_stack.scrape import relabel_config, scrape_configs, target_groups, write_targets
from local_stack.stack import DEFAULT_VALUES


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> list[manifests.Manifest]:
    umbrella = chart.prepare_umbrella(tmp_path_factory.mktemp("scrape"))
    return chart.render(
        umbrella, release="r1", namespace="kubeflow-user07", values_files=[DEFAULT_VALUES]
    )


def test_every_pod_is_a_target_with_the_operators_labels_ready_or_not(objects, tmp_path):
    pods = [p for w in manifests.workloads(objects) for p in plan_pods(w)]
    [monitor] = manifests.service_monitors(objects)
    [config] = scrape_configs([monitor], tmp_path)
    assert config["job_name"] == "serviceMonitor/kubeflow-user07/r1-model-exporter/0"
    assert (config["metrics_path"], config["scrape_interval"]) == ("/metrics", "2s")
    [files] = config["file_sd_configs"]
    ready = {"r1-model-exporter-stable-0": True}
    write_targets(tmp_path, [monitor], manifests.services(objects), pods, ready)
    groups = json.loads(Path(files["files"][0]).read_text())
    by_pod = {g["labels"]["pod"]: g for g in groups}
    assert set(by_pod) == {
        "r1-model-exporter-stable-0",
        "r1-model-exporter-canary-0",
        "r1-model-exporter-router-0",
    }
    stable = by_pod["r1-model-exporter-stable-0"]
    stable_pod = next(p for p in pods if p.name == "r1-model-exporter-stable-0")
    assert stable["targets"] == [f"127.0.0.1:{stable_pod.port('http')}"]
    visible = {k: v for k, v in stable["labels"].items() if not k.startswith("__")}
    assert visible == {
        "namespace": "kubeflow-user07",
        "service": "r1-model-exporter-stable",
        "pod": "r1-model-exporter-stable-0",
        "container": "exporter",
        "endpoint": "http",
        "job": "r1-model-exporter-stable",
    }
    assert stable["labels"]["__meta_kubernetes_endpoint_ready"] == "true"
    canary = by_pod["r1-model-exporter-canary-0"]["labels"]
    assert canary["__meta_kubernetes_endpoint_ready"] == "false", "not ready, still scraped"
    assert canary["__meta_kubernetes_pod_label_modelmon_io_variant"] == "canary"


def test_a_monitor_selecting_no_service_yields_no_targets(objects):
    objects = copy.deepcopy(objects)
    [monitor] = manifests.service_monitors(objects)
    for service in manifests.of_kind(objects, "Service"):
        service["metadata"]["labels"]["app.kubernetes.io/name"] = "something-else"
    services = manifests.services(objects)
    pods = [p for w in manifests.workloads(objects) for p in plan_pods(w)]
    assert target_groups(monitor, monitor.endpoints[0], services, pods, {}) == []


def test_relabelings_reach_prometheus_in_its_own_spelling(objects, tmp_path):
    [monitor] = copy.deepcopy(manifests.of_kind(objects, "ServiceMonitor"))
    endpoint = monitor["spec"]["endpoints"][0]
    endpoint["relabelings"] = [
        {
            "sourceLabels": ["__meta_kubernetes_pod_label_modelmon_io_variant"],
            "targetLabel": "side",
            "action": "Replace",
        }
    ]
    endpoint["metricRelabelings"] = [
        {"sourceLabels": ["__name__"], "regex": "python_.*", "action": "drop"}
    ]
    [config] = scrape_configs(manifests.service_monitors([monitor]), tmp_path)
    assert config["relabel_configs"] == [
        {
            "source_labels": ["__meta_kubernetes_pod_label_modelmon_io_variant"],
            "target_label": "side",
            "action": "replace",
        }
    ]
    assert config["metric_relabel_configs"] == [
        {"source_labels": ["__name__"], "regex": "python_.*", "action": "drop"}
    ]


@pytest.mark.parametrize(
    ("relabeling", "message"),
    [
        (
            {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"},
            "reads __meta_kubernetes_pod_node_name, which the local stack's discovery",
        ),
        ({"source_labels": ["a"]}, "relabeling field source_labels is not known"),
    ],
)
def test_a_relabeling_the_local_stack_cannot_honour_is_refused(relabeling, message):
    with pytest.raises(manifests.ManifestError, match=message):
        relabel_config(relabeling, "ServiceMonitor m endpoint 0")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tlsConfig", {"insecureSkipVerify": True}, "tlsConfig is not modelled"),
        ("bearerTokenSecret", {"name": "t", "key": "k"}, "bearerTokenSecret is not modelled"),
        ("scheme", "https", "scheme https needs TLS"),
    ],
)
def test_an_endpoint_setting_that_would_be_dropped_is_refused(objects, field, value, message):
    [monitor] = copy.deepcopy(manifests.of_kind(objects, "ServiceMonitor"))
    monitor["spec"]["endpoints"][0][field] = value
    with pytest.raises(manifests.ManifestError, match=message):
        manifests.service_monitors([monitor])
