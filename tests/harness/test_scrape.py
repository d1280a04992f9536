"""ServiceMonitors of the rendered chart become the scrape configs the operator would make."""

from local_stack import chart, manifests
from local_stack.pods import plan_pods
from local_stack.scrape import scrape_configs
from local_stack.stack import DEFAULT_VALUES


def test_every_exporter_pod_is_a_target_with_the_operators_labels(tmp_path):
    umbrella = chart.prepare_umbrella(tmp_path)
    objects = chart.render(
        umbrella, release="r1", namespace="kubeflow-user07", values_files=[DEFAULT_VALUES]
    )
    pods = [p for w in manifests.workloads(objects) for p in plan_pods(w)]
    [config] = scrape_configs(
        manifests.service_monitors(objects), manifests.services(objects), pods
    )
    assert config["job_name"] == "serviceMonitor/kubeflow-user07/r1-model-exporter/0"
    assert config["metrics_path"] == "/metrics"
    assert config["scrape_interval"] == "2s"
    targets = {c["labels"]["pod"]: c for c in config["static_configs"]}
    assert set(targets) == {
        "r1-model-exporter-stable-0",
        "r1-model-exporter-canary-0",
        "r1-model-exporter-router-0",
    }
    stable = targets["r1-model-exporter-stable-0"]
    stable_pod = next(p for p in pods if p.name == "r1-model-exporter-stable-0")
    assert stable["targets"] == [f"127.0.0.1:{stable_pod.port('http')}"]
    assert stable["labels"] == {
        "namespace": "kubeflow-user07",
        "service": "r1-model-exporter-stable",
        "pod": "r1-model-exporter-stable-0",
        "container": "exporter",
        "endpoint": "http",
        "job": "r1-model-exporter-stable",
    }


def test_a_monitor_selecting_no_service_yields_no_targets(tmp_path):
    umbrella = chart.prepare_umbrella(tmp_path)
    objects = chart.render(umbrella, release="r1", namespace="ns", values_files=[DEFAULT_VALUES])
    for service in manifests.of_kind(objects, "Service"):
        service["metadata"]["labels"]["app.kubernetes.io/name"] = "something-else"
    [config] = scrape_configs(manifests.service_monitors(objects), manifests.services(objects), [])
    assert config["static_configs"] == []
