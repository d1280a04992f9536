"""Through Prometheus's HTTP API: the rendered exporters are scraped with their labels."""

from __future__ import annotations

import requests

from local_stack.processes import wait_until
from local_stack.stack import LocalStack

ROW = {f"x{i}": 0.4 for i in range(1, 11)}


def test_every_exporter_and_router_target_is_up(local_stack: LocalStack):
    targets = local_stack.prometheus.targets()
    assert {t["labels"]["pod"] for t in targets} == {
        "e2e-model-exporter-stable-0",
        "e2e-model-exporter-canary-0",
        "e2e-model-exporter-router-0",
    }
    # Other tests restart pods; a restarted pod is up again from its next scrape.
    wait_until(local_stack.targets_healthy, 20, describe="every target up")
    query = 'sum(up{namespace="kubeflow-user01"})'
    wait_until(
        lambda: float(local_stack.prometheus.query(query)[0]["value"][1]) == 3,
        20,
        describe=f"{query} == 3",
    )


def test_model_metric_carries_variant_version_and_user(local_stack: LocalStack):
    series = local_stack.prometheus.query("model_prediction_total")
    labels = {(s["metric"]["variant"], s["metric"]["model_version"]) for s in series}
    assert labels == {("stable", "1.0.0"), ("canary", "2.0.0")}
    assert {s["metric"]["user_id"] for s in series} == {"user01"}


def test_predictions_show_up_in_prometheus(local_stack: LocalStack):
    stable = next(p for p in local_stack.pods if p.name == "e2e-model-exporter-stable-0")
    for _ in range(3):
        response = requests.post(stable.url("http", "/predict"), json={"features": ROW}, timeout=5)
        response.raise_for_status()
    query = 'model_prediction_total{variant="stable"}'

    def counted() -> bool:
        result = local_stack.prometheus.query(query)
        return bool(result) and float(result[0]["value"][1]) >= 3

    wait_until(counted, 20, describe=f"{query} ≥ 3")
